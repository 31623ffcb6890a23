import type { Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../../config/usage-error.js';
import type { BuildContext } from '../../context/build-context.js';
import { currentUid, type Host } from '../../host/host.js';

/** What became of a cached file. */
export type Outcome = 'downloaded' | 'revalidated' | 'cached';

/** libvirt's qemu user reads the cache: folders 0755, files 0644. */
const DIR_MODE = 0o755;
export const FILE_MODE = 0o644;
/** A partial this old belongs to no running fetch. */
const STALE_PARTIAL_MS = 24 * 60 * 60 * 1000;

export async function makeCacheDir(host: Host, dir: string): Promise<void> {
  // Each folder made gets DIR_MODE whatever the umask: the qemu user must still get in.
  await host.makeDirs(dir, DIR_MODE);
  await checkCacheDir(dir);
}

/**
 * What is in the cache folder is run as the installer: it must be this
 * user's own folder that nobody else can write (not a symlink, not group- or
 * world-writable), or what another user put there would be "taken from cache".
 */
async function checkCacheDir(dir: string): Promise<void> {
  const info = await lstat(dir);
  const uid = currentUid();
  const problem = info.isSymbolicLink()
    ? 'is a symlink'
    : !info.isDirectory()
      ? 'is not a folder'
      : info.uid !== uid
        ? `belongs to uid ${info.uid}, not to the building user (uid ${uid})`
        : (info.mode & 0o022) !== 0
          ? `can be written by others (mode ${(info.mode & 0o777).toString(8)})`
          : undefined;
  if (problem) {
    throw new UsageError(
      `The cache folder ${dir} ${problem}: its files would be used as the installer. ` +
        'Use a folder of your own that only you can write (cache_dir, -c).',
    );
  }
}

/** Partials a killed run left behind (ours, and rsync's `.name.XXXXXX`), once they are a day old. */
export async function removeStalePartials(ctx: BuildContext, dir: string, names: string[]): Promise<void> {
  const rsyncTemp = new Set(names.map((name) => `.${name}.`));
  const now = Date.now();
  for (const entry of await readdir(dir)) {
    const ours = /\.partial-[0-9a-f]+$/.test(entry);
    const rsyncs = [...rsyncTemp].some((prefix) => entry.startsWith(prefix) && entry.length === prefix.length + 6);
    if (!ours && !rsyncs) continue;
    const path = join(dir, entry);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && now - info.mtimeMs > STALE_PARTIAL_MS) {
      await ctx.host.remove(path);
      ctx.reporter.info(`Removed the stale partial download ${path}`);
    }
  }
}

/** Where a file is written before it is complete: same folder, so the final rename is atomic. */
export function partialPath(path: string): string {
  return `${path}.partial-${randomBytes(6).toString('hex')}`;
}

export function sidecarPath(path: string): string {
  return `${path}.http.json`;
}

export async function removeCached(host: Host, path: string): Promise<void> {
  await host.remove(path);
  await host.remove(sidecarPath(path));
}

/** A cached file: a regular file of this user's, never a symlink (which a download replaces, not follows). */
export async function statFile(path: string): Promise<Stats | undefined> {
  try {
    const info = await lstat(path);
    return info.isFile() && info.uid === currentUid() ? info : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Write a file through a partial name that the cleanup stack knows: `write`
 * fills it; it is renamed to `path` only when `write` resolves true.
 */
export async function viaPartial(
  ctx: BuildContext,
  path: string,
  write: (partial: string) => Promise<boolean>,
): Promise<boolean> {
  const partial = partialPath(path);
  const entry = ctx.cleanup.register({ kind: 'path', path: partial });
  try {
    const keep = await write(partial);
    if (keep) {
      await ctx.host.replace(partial, path);
      ctx.cleanup.forget(entry);
    } else {
      await ctx.cleanup.release(entry);
    }
    return keep;
  } catch (error) {
    await ctx.cleanup.release(entry);
    throw error;
  }
}
