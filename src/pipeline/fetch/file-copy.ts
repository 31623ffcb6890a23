import type { Stats } from 'node:fs';
import { lstat, readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { InstallerSource } from '../../config/image-spec.js';
import { formatBytes, formatDuration } from '../../common/units.js';
import type { BuildContext } from '../../context/build-context.js';
import { AbortedError } from '../../host/exec.js';
import { currentUid } from '../../host/host.js';
import { sha256File } from '../checksum.js';
import { FILE_MODE, statFile, viaPartial, type Outcome } from './cache-folder.js';
import { FetchError, mismatch, type InstallerKey } from './fetch-error.js';

export async function copyLocal(
  ctx: BuildContext,
  key: InstallerKey,
  source: InstallerSource,
  path: string,
): Promise<Outcome> {
  let original: Stats;
  try {
    original = await stat(source.location);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FetchError(
      key,
      source.display,
      code === 'ENOENT' ? `${source.location} does not exist` : (error as Error).message,
    );
  }
  if (!original.isFile()) throw new FetchError(key, source.display, `${source.location} is not a regular file`);
  const name = basename(path);
  const cached = await statFile(path);
  // utimes() takes seconds as a double: the copy's time can be off by a microsecond.
  if (cached && cached.size === original.size && Math.abs(cached.mtimeMs - original.mtimeMs) < 1) {
    if (await isOurCopy(ctx, path, source)) {
      ctx.reporter.info(
        `${key}: ${name} taken from cache (${formatBytes(cached.size)}, same size and time as ${source.display}, SHA-256 of our copy)`,
      );
      return 'cached';
    }
    ctx.reporter.warning(
      `${key}: ${path} has the size and time of ${source.display} but is not our copy: copying again`,
    );
  }
  const started = Date.now();
  await viaPartial(ctx, path, async (partial) => {
    await ctx.host.copyFile(source.location, partial);
    if (ctx.signal?.aborted) throw new AbortedError('interrupted');
    await ctx.host.chmod(partial, FILE_MODE);
    if (source.sha256) {
      const actual = await sha256File(partial, undefined, ctx.signal);
      if (actual !== source.sha256) throw mismatch(key, source, actual, 'nothing was copied into the cache');
    }
    // The same time as the original is what tells the next run that the copy is current.
    await ctx.host.setTimes(partial, original.atimeMs, original.mtimeMs);
    const copy: CopyRecord = { source: source.display, sha256: await sha256File(partial, undefined, ctx.signal) };
    await ctx.host.remove(copySidecarPath(path));
    await ctx.host.writeFile(copySidecarPath(path), `${JSON.stringify(copy)}\n`, FILE_MODE);
    return true;
  });
  ctx.reporter.info(
    `${key}: copied ${source.display} to ${path} (${formatBytes(original.size)} in ${formatDuration(Date.now() - started)})`,
  );
  return 'downloaded';
}

/** What proves a cached copy is ours: the SHA-256 this build wrote next to it when it copied it. */
interface CopyRecord {
  source: string;
  sha256: string;
}

function copySidecarPath(path: string): string {
  return `${path}.copy.json`;
}

/** Whether the cached file still has the SHA-256 recorded when we copied it from this source (re-hashed). */
async function isOurCopy(ctx: BuildContext, path: string, source: InstallerSource): Promise<boolean> {
  const sidecar = copySidecarPath(path);
  const info = await lstat(sidecar).catch(() => undefined);
  if (!info?.isFile() || info.uid !== currentUid()) return false;
  try {
    const record = JSON.parse(await readFile(sidecar, 'utf8')) as Partial<CopyRecord>;
    return record.source === source.display && record.sha256 === (await sha256File(path, undefined, ctx.signal));
  } catch {
    return false;
  }
}
