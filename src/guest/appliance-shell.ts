import type { Appliance } from './appliance.js';

/**
 * Scripts run in the appliance's own shell (libguestfs's `debug sh`): for what
 * libguestfs has no call for (a file system's own tools), and for work that
 * would otherwise take a round trip per path (listing many folders, removing
 * many paths). The appliance's shell is not the guest's: the guest's file
 * systems are data under its mount points, and nothing of the guest runs.
 *
 * The script travels base64-encoded (no quoting of guestfish's or the
 * shell's can change it); its output is kept in the appliance and read back
 * base64-encoded in pieces under libguestfs's 4 MiB message limit, so that it
 * may hold any byte and be of any size up to `limit`.
 */

export class ApplianceScriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApplianceScriptError';
  }
}

/** Bytes of output read back per round trip (base64 makes 4/3 of it, under the 4 MiB message limit). */
const PIECE = 2 << 20;
const OUT = '/tmp/ifx-script.out';
const ERR = '/tmp/ifx-script.err';

/** One argument in the shell's single quotes (any byte but NUL). */
export const shellQuote = (value: string): string => `'${value.replace(/'/g, "'\\''")}'`;

const decode = (text: string, what: string): Buffer => {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed)) throw new ApplianceScriptError(`${what} is not base64`);
  return Buffer.from(trimmed, 'base64');
};

const SCRIPT_COMMAND = /^echo (\S+) \| base64 -d >\/tmp\/ifx-script;/;

/** The shell command that runs `script` and answers with its status, error output and first piece of output. */
function scriptCommand(script: string): string {
  const encoded = Buffer.from(script, 'utf8').toString('base64');
  return (
    `echo ${encoded} | base64 -d >/tmp/ifx-script; sh /tmp/ifx-script >${OUT} 2>${ERR}; ` +
    `echo "$? $(wc -c <${OUT})"; tail -c 600 ${ERR} | base64 -w0; echo; head -c ${PIECE} ${OUT} | base64 -w0`
  );
}

/** The script a `debug sh` command of runScript's carries; undefined for any other command (plans and fakes). */
export function scriptOf(command: string): string | undefined {
  const encoded = SCRIPT_COMMAND.exec(command);
  return encoded ? Buffer.from(encoded[1], 'base64').toString('utf8') : undefined;
}

/** The shell's answer to a script that succeeded with `output`, all of it in the first piece (plans and fakes). */
export function scriptSucceeded(output: Buffer | string): string {
  const bytes = Buffer.from(output);
  return `0 ${bytes.length}\n\n${bytes.toString('base64')}`;
}

/**
 * Run `script` with sh in the appliance; its standard output. A script that
 * exits non-zero is an error naming `what`, with the end of its error output.
 */
export async function runScript(
  appliance: Pick<Appliance, 'call'>,
  what: string,
  script: string,
  limit = 256 << 20,
): Promise<Buffer> {
  const first = await appliance.call('debug', ['sh', scriptCommand(script)], { quiet: true, mayFail: true });
  if (!first.ok) throw new ApplianceScriptError(`the appliance could not run ${what}: ${first.error}`);
  const [head = '', errors = '', piece = ''] = first.stdout.split('\n');
  const status = /^(\d+) (\d+)$/.exec(head.trim());
  if (!status) throw new ApplianceScriptError(`${what}: the appliance's shell answered "${head.slice(0, 80)}"`);
  if (status[1] !== '0') {
    const text = decode(errors, `${what}'s error output`).toString('utf8').replace(/\s+/g, ' ').trim();
    throw new ApplianceScriptError(`${what} failed in the appliance (exit ${status[1]})${text ? `: ${text}` : ''}`);
  }
  const size = Number(status[2]);
  if (size > limit) throw new ApplianceScriptError(`${what} printed ${size} bytes (at most ${limit} are read)`);
  const pieces = [decode(piece, `${what}'s output`)];
  for (let at = pieces[0].length; at < size;) {
    const next = await appliance.call('debug', ['sh', `tail -c +${at + 1} ${OUT} | head -c ${PIECE} | base64 -w0`], {
      quiet: true,
    });
    const bytes = decode(next.stdout, `${what}'s output`);
    if (!bytes.length) break;
    pieces.push(bytes);
    at += bytes.length;
  }
  const out = Buffer.concat(pieces);
  if (out.length !== size) throw new ApplianceScriptError(`${what}: read ${out.length} of its ${size} bytes of output`);
  return out;
}
