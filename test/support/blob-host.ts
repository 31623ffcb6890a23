/**
 * Resolves every `*.blob.core.windows.net` name to 127.0.0.1, as an
 * /etc/hosts line would, for the process that loads it (`node --import`, or
 * NODE_OPTIONS for a step the action runner starts). @actions/cache takes its
 * Azure SDK download path only for archive URLs on that domain; with this,
 * the signed URLs of the results-service stand-in can name
 * `devstoreaccount1.blob.core.windows.net:PORT` and reach azurite on this
 * machine. Other names resolve as usual.
 */
import dns, { type LookupAddress, type LookupOptions } from 'node:dns';

export const BLOB_DOMAIN = '.blob.core.windows.net';

type Callback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

const original = dns.lookup.bind(dns) as (hostname: string, options: LookupOptions, callback: Callback) => void;

function lookup(hostname: string, options: LookupOptions | number | Callback, callback?: Callback): void {
  const done = (typeof options === 'function' ? options : callback) as Callback;
  const opts: LookupOptions =
    typeof options === 'function' ? {} : typeof options === 'number' ? { family: options } : options;
  if (!hostname.toLowerCase().endsWith(BLOB_DOMAIN)) {
    original(hostname, opts, done);
    return;
  }
  process.nextTick(() => {
    if (opts.all) done(null, [{ address: '127.0.0.1', family: 4 }]);
    else done(null, '127.0.0.1', 4);
  });
}

(dns as { lookup: unknown }).lookup = lookup;
