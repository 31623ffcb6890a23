import * as cache from '@actions/cache';
import { createHash } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageSpec, InstallerSource } from '../config/image-spec.js';
import { sha256File } from '../pipeline/checksum.js';
import type { FetchedInstaller } from '../pipeline/fetch.js';
import type { Reporter } from '../common/reporter.js';

const KEY_PREFIX = 'image-factory-installer';

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function installerSources(spec: ImageSpec): InstallerSource[] {
  return spec.installer.kind === 'image' ? [spec.installer.image] : [spec.installer.linux, spec.installer.initrd];
}

/**
 * `image-factory-installer-<image>-<sha256(URLs)[0:16]>-`: every entry for
 * these URLs starts so. A changed URL never matches an old entry; a new
 * upstream file under the same URL makes a new entry (the last part of the
 * key is the files' digest), and the fetch step revalidates whatever was
 * restored. Undefined when every source is a local file: nothing to cache.
 */
export function installerKeyPrefix(spec: ImageSpec): string | undefined {
  const remote = installerSources(spec).filter((source) => source.scheme !== 'file');
  if (remote.length === 0) return undefined;
  // The URL as logged (any password replaced): a rotated password is the same file.
  const urls = installerSources(spec).map((source) => source.display);
  // A cache key may not hold a comma.
  return `${KEY_PREFIX}-${spec.name.replace(/,/g, '_')}-${sha256Hex(urls.join('\n')).slice(0, 16)}-`;
}

/** The files of a cache folder worth keeping: not hidden, not a partial download. */
async function cachedFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const files: string[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.') || /\.partial-[0-9a-f]+$/.test(name)) continue;
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info?.isFile()) files.push(name);
  }
  return files;
}

/**
 * sha256 over `<name> <sha256>` lines of the files in the cache folder (those
 * cachedFiles() keeps: the installer files and their validators): what the
 * saved archive holds, and what a restore must give back.
 */
export async function folderDigest(dir: string): Promise<string> {
  const lines: string[] = [];
  for (const name of await cachedFiles(dir)) lines.push(`${name} ${await sha256File(join(dir, name))}`);
  return sha256Hex(lines.join('\n'));
}

/** Remove what appeared in `dir` since `before` was listed (a failed or untrustworthy restore). */
async function removeAdded(dir: string, before: Set<string>): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const added = names.filter((name) => !before.has(name)).sort();
  for (const name of added) await rm(join(dir, name), { recursive: true, force: true });
  return added;
}

/**
 * The image's installer cache folder (`spec.cacheDir`) kept in the GitHub
 * Actions cache, so that a fresh runner does not download the installer again.
 * The cache is a convenience: when the service is missing or fails, the build
 * goes on (only a ValidationError — a bad key — fails the step).
 */
export class InstallerCache {
  private readonly prefix: string | undefined;
  /** Why the Actions cache takes no part in this build, when it does not. */
  private readonly notUsed: { reason: string; warn: boolean } | undefined;
  restoredKey: string | undefined;
  savedKey: string | undefined;

  constructor(
    private readonly spec: ImageSpec,
    private readonly reporter: Reporter,
  ) {
    this.prefix = installerKeyPrefix(spec);
    if (this.prefix === undefined) {
      this.notUsed = { reason: 'The installer comes from local files: the Actions cache is not used.', warn: false };
    } else if (!cache.isFeatureAvailable()) {
      this.notUsed = {
        reason:
          'The GitHub Actions cache service is not available to this job (no ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL): the installer files are downloaded and not cached.',
        warn: true,
      };
    }
  }

  /** Whether the Actions cache takes part (remote installer sources, and a cache service). */
  get active(): boolean {
    return this.notUsed === undefined;
  }

  async restore(): Promise<void> {
    if (this.notUsed) {
      // Said once, here; saving stays silent.
      if (this.notUsed.warn) this.reporter.warning(this.notUsed.reason);
      else this.reporter.info(this.notUsed.reason);
      return;
    }
    if (this.prefix === undefined) return;
    const present = await cachedFiles(this.spec.cacheDir);
    if (present.length) {
      this.reporter.info(
        `${this.spec.cacheDir} already holds ${present.join(', ')} (from an earlier run on this runner): not restoring.`,
      );
      return;
    }
    // The folder holds none of our files: whatever appears in it now comes from the restore.
    const before = new Set(await readdir(this.spec.cacheDir).catch(() => [] as string[]));
    let restored: string | undefined;
    try {
      restored = await cache.restoreCache([this.spec.cacheDir], this.prefix, [this.prefix]);
    } catch (error) {
      if (error instanceof cache.ValidationError) throw error;
      await removeAdded(this.spec.cacheDir, before);
      this.reporter.warning(
        `Restoring the installer cache failed: ${error instanceof Error ? error.message : String(error)}; downloading instead.`,
      );
      return;
    }
    if (restored === undefined) {
      // @actions/cache reports its own failures (a warning) and returns undefined: a
      // damaged archive can have been extracted in part, files whole in size but not
      // in content. None of it may be trusted by the fetch step's revalidation.
      const removed = await removeAdded(this.spec.cacheDir, before);
      this.reporter.info(
        removed.length
          ? `The installer cache was not restored; removed what the failed restore left in ${this.spec.cacheDir} (${removed.join(', ')}): the fetch step downloads the installer.`
          : `No cached installer for ${this.prefix}*: the fetch step downloads it.`,
      );
      return;
    }
    // The key ends with the digest of the files saved: what came back must match it.
    const digest = (await folderDigest(this.spec.cacheDir)).slice(0, 16);
    if (!restored.endsWith(`-${digest}`)) {
      const removed = await removeAdded(this.spec.cacheDir, before);
      this.reporter.warning(
        `The installer files restored from the Actions cache (${restored}) do not match their key (their digest is ${digest}): removed ${removed.join(', ') || 'them'}; downloading instead.`,
      );
      return;
    }
    this.restoredKey = restored;
    this.reporter.info(
      `Restored the installer files from the Actions cache (${this.restoredKey}); the fetch step revalidates them.`,
    );
  }

  /** Keep the folder after a fetch that downloaded something. */
  async save(installer: FetchedInstaller): Promise<void> {
    if (this.notUsed || this.prefix === undefined) return;
    const key = `${this.prefix}${(await folderDigest(installer.dir)).slice(0, 16)}`;
    if (key === this.restoredKey) {
      this.reporter.info(`The Actions cache already holds these files (${key}).`);
      return;
    }
    let id: number;
    try {
      id = await cache.saveCache([this.spec.cacheDir], key);
    } catch (error) {
      if (error instanceof cache.ValidationError) throw error;
      this.reporter.warning(
        `Saving the installer cache failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      return;
    }
    if (id === -1) {
      this.reporter.info(
        `The installer files were not saved to the Actions cache (${key}); see the lines above for why.`,
      );
      return;
    }
    this.savedKey = key;
    this.reporter.info(`Saved the installer files to the Actions cache as ${key}.`);
  }
}
