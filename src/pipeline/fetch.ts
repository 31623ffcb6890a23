import { basename, join, posix } from 'node:path';
import type { ImageSpec, InstallerSource } from '../config/image-spec.js';
import { formatBytes } from '../common/units.js';
import { AbortedError } from '../host/exec.js';
import { redactSecrets, secretVariants } from '../common/credentials.js';
import { isAbort } from '../net/retry.js';
import { rsyncEndpoint } from '../net/rsync.js';
import { sha256File } from './checksum.js';
import type { BuildContext } from '../context/build-context.js';
import {
  describeChain,
  describeRecord,
  expectedSums,
  type ChainRecord,
  type ExpectedSums,
} from '../supply-chain/verify.js';
import { makeCacheDir, removeCached, removeStalePartials, statFile, type Outcome } from './fetch/cache-folder.js';
import { copyLocal } from './fetch/file-copy.js';
import { describeError, FetchError, type InstallerKey, type Wanted } from './fetch/fetch-error.js';
import { downloadHttp } from './fetch/http.js';
import { fetchRsync, rsyncCommand } from './fetch/rsync.js';

export { FetchError, type InstallerKey } from './fetch/fetch-error.js';

export interface FetchedInstaller {
  /** The cache folder that holds the files. */
  dir: string;
  /** File names relative to `dir`. */
  files: { linux?: string; initrd?: string; image?: string };
  /** Whether anything new was written into the cache. */
  downloaded: boolean;
  /** What the files were verified against, when the image names a checksum list. */
  verification?: ChainRecord;
}

/**
 * Bring the installer files (kernel and initrd, or an installer image) into
 * `<cache_dir>/<image>/`. Nothing ever appears under a final name until it is
 * whole (and verified, where a SHA-256 is configured); a later run reuses what
 * is there when the source says it is unchanged.
 */
export async function fetchInstaller(ctx: BuildContext): Promise<FetchedInstaller> {
  const dir = ctx.spec.cacheDir;
  const sources = installerSources(ctx.spec.installer);
  const names = cacheNames(sources);
  const files: FetchedInstaller['files'] = {};
  for (const [key] of sources) files[key] = names[key];

  warnIfUnverified(ctx, sources);
  // A recorded build downloads nothing: it says what a real one would fetch and verify.
  if (!ctx.host.live) {
    for (const line of describeChain(ctx.spec.verification, sources)) ctx.reporter.info(line);
    for (const [key, source] of sources) await describeFetch(ctx, key, source, join(dir, names[key]));
    return { dir, files, downloaded: false };
  }

  // The checksum list first, fresh on every build: a cached file is trusted only if it matches it.
  const expected = ctx.spec.verification ? await expectedSums(ctx, ctx.spec.verification, sources) : undefined;
  await makeCacheDir(ctx.host, dir);
  await removeStalePartials(ctx, dir, Object.values(names));
  let downloaded = false;
  for (const [key, source] of sources) {
    const outcome = await fetchOne(ctx, key, wanted(key, source, expected), join(dir, names[key]));
    if (outcome === 'downloaded') downloaded = true;
  }
  if (expected) ctx.reporter.info(describeRecord(expected.record));
  return { dir, files, downloaded, ...(expected ? { verification: expected.record } : {}) };
}

/** One warning for an image whose installer files nothing vouches for. */
function warnIfUnverified(ctx: BuildContext, sources: Array<[InstallerKey, InstallerSource]>): void {
  if (ctx.spec.verification || sources.every(([, source]) => source.sha256)) return;
  ctx.reporter.warning(
    `the installer files of ${ctx.spec.name} are not verified: no installer-checksums (the distribution's signed checksum list) is set`,
  );
}

/** The source with the SHA-256 the verified list gives it; a configured one must agree. */
function wanted(key: InstallerKey, source: InstallerSource, expected: ExpectedSums | undefined): Wanted {
  const listed = expected?.sums[key];
  if (expected === undefined || listed === undefined) return source;
  if (source.sha256 && source.sha256 !== listed) {
    throw new FetchError(
      key,
      source.display,
      `the configured ${key}_sha256 ${source.sha256} differs from ${listed}, the SHA-256 in ${expected.origin}`,
    );
  }
  return { ...source, sha256: listed, origin: expected.origin };
}

function installerSources(installer: ImageSpec['installer']): Array<[InstallerKey, InstallerSource]> {
  return installer.kind === 'image'
    ? [['image', installer.image]]
    : [
        ['linux', installer.linux],
        ['initrd', installer.initrd],
      ];
}

/** The last part of the URI's path, as the original names cached files; prefixed with the key when two collide. */
function cacheNames(sources: Array<[InstallerKey, InstallerSource]>): Record<InstallerKey, string> {
  const names = {} as Record<InstallerKey, string>;
  for (const [key, source] of sources) names[key] = sourceFileName(source) ?? key;
  const values = sources.map(([key]) => names[key]);
  if (new Set(values).size !== values.length) {
    for (const [key] of sources) names[key] = `${key}-${names[key]}`;
  }
  return names;
}

function sourceFileName(source: InstallerSource): string | undefined {
  let path = source.location;
  if (source.scheme !== 'file') {
    try {
      path = new URL(source.location).pathname;
    } catch {
      path = source.location.replace(/^[a-z]+:\/\/[^/]*/i, '');
    }
    try {
      path = decodeURIComponent(path);
    } catch {
      // Keep it as written.
    }
  }
  const name = posix.basename(path);
  return name === '' || name === '.' || name === '..' ? undefined : name;
}

async function describeFetch(
  ctx: BuildContext,
  key: InstallerKey,
  source: InstallerSource,
  path: string,
): Promise<void> {
  switch (source.scheme) {
    case 'file':
      ctx.reporter.info(`${key}: would copy ${source.display} to ${path}`);
      return;
    case 'http':
    case 'https':
      ctx.reporter.info(`${key}: would download ${source.display} to ${path} (revalidated if cached)`);
      return;
    case 'rsync':
      await ctx.host.run(rsyncCommand(rsyncEndpoint(source.location).uri, path));
      return;
  }
}

async function fetchOne(ctx: BuildContext, key: InstallerKey, source: Wanted, path: string): Promise<Outcome> {
  const { reporter } = ctx;
  const name = basename(path);
  if (source.sha256) {
    const cached = await statFile(path);
    if (cached) {
      const actual = await sha256File(path, undefined, ctx.signal);
      if (actual === source.sha256) {
        reporter.info(`${key}: ${name} taken from cache (${formatBytes(cached.size)}, SHA-256 matches)`);
        return 'cached';
      }
      reporter.info(`${key}: the cached ${name} does not have the expected SHA-256 (${actual}); fetching it again`);
      await removeCached(ctx.host, path);
    }
  }
  try {
    switch (source.scheme) {
      case 'file':
        return await copyLocal(ctx, key, source, path);
      case 'http':
      case 'https':
        return await downloadHttp(ctx, key, source, path);
      case 'rsync':
        return await fetchRsync(ctx, key, source, path);
    }
  } catch (error) {
    if (error instanceof FetchError) throw error;
    if (isAbort(error, ctx.signal)) {
      throw new AbortedError(`interrupted while fetching the installer ${key} from ${source.display}`);
    }
    throw new FetchError(key, source.display, redactSecrets(describeError(error), secretVariants(source.uri)));
  }
}
