import { formatBytes, formatDuration } from '../../common/units.js';
import { redactSecrets } from '../../common/credentials.js';
import { basename } from 'node:path';
import type { InstallerSource } from '../../config/image-spec.js';
import type { BuildContext } from '../../context/build-context.js';
import { CommandError, formatCommand } from '../../host/command-error.js';
import { rsyncWithRetries } from '../../net/retry.js';
import { describeRsyncFailure, rsyncArgv, rsyncEndpoint } from '../../net/rsync.js';
import { sha256File } from '../checksum.js';
import { FILE_MODE, removeCached, statFile, type Outcome } from './cache-folder.js';
import { FetchError, mismatch, type InstallerKey } from './fetch-error.js';

/** rsync writes a temporary file and renames it; its size-and-time check skips what is unchanged. */
export function rsyncCommand(uri: string, path: string): string[] {
  return rsyncArgv({ flags: ['--times'], operands: [uri, path] });
}

export async function fetchRsync(
  ctx: BuildContext,
  key: InstallerKey,
  source: InstallerSource,
  path: string,
): Promise<Outcome> {
  const { reporter } = ctx;
  const { uri, env, secrets } = rsyncEndpoint(source.location);
  const argv = rsyncCommand(uri, path);
  const before = await statFile(path);
  const started = Date.now();
  try {
    await rsyncWithRetries(
      () =>
        ctx.host.run(argv, {
          env,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
          onLine: (line) => reporter.output(redactSecrets(line, secrets)),
        }),
      {
        what: `${key}: ${formatCommand(argv)}`,
        secrets,
        warn: (message) => reporter.warning(message),
        signal: ctx.signal,
      },
    );
  } catch (error) {
    if (error instanceof CommandError)
      throw new FetchError(key, source.display, redactSecrets(describeRsyncFailure(error), secrets));
    throw error;
  }
  const after = await statFile(path);
  if (!after) throw new FetchError(key, source.display, `rsync finished, but ${path} is not a file`);
  if ((after.mode & 0o777) !== FILE_MODE) await ctx.host.chmod(path, FILE_MODE);
  if (source.sha256) {
    const actual = await sha256File(path, undefined, ctx.signal);
    if (actual !== source.sha256) {
      await removeCached(ctx.host, path);
      throw mismatch(key, source, actual, 'the fetched file was deleted');
    }
  }
  const name = basename(path);
  const changed = !before || before.ino !== after.ino || before.size !== after.size || before.mtimeMs !== after.mtimeMs;
  if (!changed) {
    reporter.info(`${key}: ${name} taken from cache (${formatBytes(after.size)}, unchanged on ${source.display})`);
    return 'cached';
  }
  reporter.info(
    `${key}: downloaded ${source.display} to ${path} (${formatBytes(after.size)} in ${formatDuration(Date.now() - started)})`,
  );
  return 'downloaded';
}
