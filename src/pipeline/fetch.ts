import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import type { ImageSpec, InstallerSource } from '../config/image-spec.js';
import { formatBytes, formatDuration } from '../common/units.js';
import { CommandError, formatCommand } from '../host/command-error.js';
import { UsageError } from '../config/usage-error.js';
import { AbortedError } from '../host/exec.js';
import { currentUid } from '../host/host.js';
import { redactSecrets, secretVariants } from '../common/credentials.js';
import { downloadFile, isTransientHttpFailure, type DownloadResult } from '../net/http-download.js';
import { isAbort, withRetries } from '../net/retry.js';
import { describeRsyncFailure, isTransientRsyncFailure, rsyncArgv, rsyncEndpoint } from '../net/rsync.js';
import { sha256File } from './checksum.js';
import type { BuildContext } from '../context/build-context.js';
import { throttled } from '../common/reporter.js';
import {
  describeChain,
  describeRecord,
  expectedSums,
  type ChainRecord,
  type ExpectedSums,
} from '../supply-chain/verify.js';

export type InstallerKey = 'linux' | 'initrd' | 'image';

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

export class FetchError extends Error {
  constructor(
    readonly key: InstallerKey,
    /** The URI with any password replaced. */
    readonly display: string,
    readonly reason: string,
  ) {
    super(`Cannot fetch the installer ${key} from ${display}: ${reason}`);
    this.name = 'FetchError';
  }
}

type Outcome = 'downloaded' | 'revalidated' | 'cached';

/** A source with the SHA-256 it must have, and where that SHA-256 comes from when not from the configuration. */
type Wanted = InstallerSource & { origin?: string };

/** libvirt's qemu user reads the cache: folders 0755, files 0644. */
const DIR_MODE = 0o755;
const FILE_MODE = 0o644;
/** A partial this old belongs to no running fetch. */
const STALE_PARTIAL_MS = 24 * 60 * 60 * 1000;
/** An HTTP download that receives nothing for this long is retried. */
const STALL_TIMEOUT_MS = 60_000;
const PROGRESS_INTERVAL_MS = 5000;

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
  await makeCacheDir(dir);
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

async function makeCacheDir(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: DIR_MODE });
  // mkdir's mode is filtered by the umask; the qemu user must still get in.
  if (first !== undefined) {
    for (let path = dir; path.startsWith(first); path = join(path, '..')) {
      if ((await lstat(path)).isDirectory()) await chmod(path, DIR_MODE);
      if (path === first) break;
    }
  }
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
async function removeStalePartials(ctx: BuildContext, dir: string, names: string[]): Promise<void> {
  const rsyncTemp = new Set(names.map((name) => `.${name}.`));
  const now = Date.now();
  for (const entry of await readdir(dir)) {
    const ours = /\.partial-[0-9a-f]+$/.test(entry);
    const rsyncs = [...rsyncTemp].some((prefix) => entry.startsWith(prefix) && entry.length === prefix.length + 6);
    if (!ours && !rsyncs) continue;
    const path = join(dir, entry);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && now - info.mtimeMs > STALE_PARTIAL_MS) {
      await rm(path, { force: true });
      ctx.reporter.info(`Removed the stale partial download ${path}`);
    }
  }
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
      await removeCached(path);
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

/** Where a file is written before it is complete: same folder, so the final rename is atomic. */
function partialPath(path: string): string {
  return `${path}.partial-${randomBytes(6).toString('hex')}`;
}

function sidecarPath(path: string): string {
  return `${path}.http.json`;
}

async function removeCached(path: string): Promise<void> {
  await rm(path, { force: true });
  await rm(sidecarPath(path), { force: true });
}

/** A cached file: a regular file of this user's, never a symlink (which a download replaces, not follows). */
async function statFile(path: string): Promise<Stats | undefined> {
  try {
    const info = await lstat(path);
    return info.isFile() && info.uid === currentUid() ? info : undefined;
  } catch {
    return undefined;
  }
}

function mismatch(key: InstallerKey, source: Wanted, actual: string, what: string): FetchError {
  const from = source.origin ? ` (from ${source.origin})` : '';
  return new FetchError(
    key,
    source.display,
    `SHA-256 mismatch: expected ${source.sha256}${from}, got ${actual}; ${what}`,
  );
}

/**
 * Write a file through a partial name that the cleanup stack knows: `write`
 * fills it; it is renamed to `path` only when `write` resolves true.
 */
async function viaPartial(
  ctx: BuildContext,
  path: string,
  write: (partial: string) => Promise<boolean>,
): Promise<boolean> {
  const partial = partialPath(path);
  const entry = ctx.cleanup.register({ kind: 'path', path: partial });
  try {
    const keep = await write(partial);
    if (keep) {
      await rename(partial, path);
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

// ---------------------------------------------------------------------------
// file: and plain paths

async function copyLocal(
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
    await copyFile(source.location, partial, constants.COPYFILE_FICLONE);
    if (ctx.signal?.aborted) throw new AbortedError('interrupted');
    await chmod(partial, FILE_MODE);
    if (source.sha256) {
      const actual = await sha256File(partial, undefined, ctx.signal);
      if (actual !== source.sha256) throw mismatch(key, source, actual, 'nothing was copied into the cache');
    }
    // The same time as the original is what tells the next run that the copy is current.
    await utimes(partial, original.atimeMs / 1000, original.mtimeMs / 1000);
    const copy: CopyRecord = { source: source.display, sha256: await sha256File(partial, undefined, ctx.signal) };
    await rm(copySidecarPath(path), { force: true });
    await writeFile(copySidecarPath(path), `${JSON.stringify(copy)}\n`, { mode: FILE_MODE, flag: 'wx' });
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

// ---------------------------------------------------------------------------
// http: and https:

interface Validators {
  /** The URI (password replaced) the validators belong to. */
  url: string;
  size: number;
  etag?: string;
  lastModified?: string;
}

async function downloadHttp(
  ctx: BuildContext,
  key: InstallerKey,
  source: InstallerSource,
  path: string,
): Promise<Outcome> {
  const { reporter } = ctx;
  const name = basename(path);
  const cached = await statFile(path);
  const headers = cached ? await conditionalHeaders(path, cached, source) : {};
  const conditional = Object.keys(headers).length > 0;
  const started = Date.now();

  const result = await withRetries(() => downloadOnce(ctx, key, source, path, headers), {
    what: `${key}: downloading ${source.display}`,
    warn: (message) => reporter.warning(message),
    isTransient: isTransientHttpFailure,
    describe: (error) => redactSecrets(describeError(error), secretVariants(source.uri)),
    signal: ctx.signal,
  });

  if (result.status === 304) {
    if (!cached || !conditional)
      throw new FetchError(
        key,
        source.display,
        'the server answered 304 Not Modified to a request that was not conditional',
      );
    reporter.info(
      `${key}: ${name} revalidated, unchanged on the server (HTTP 304; ${formatBytes(cached.size)} from cache)`,
    );
    return 'revalidated';
  }
  if (result.etag || result.lastModified) {
    const fresh: Validators = {
      url: source.display,
      size: result.bytes,
      etag: result.etag,
      lastModified: result.lastModified,
    };
    await writeFile(sidecarPath(path), `${JSON.stringify(fresh)}\n`, { mode: FILE_MODE });
  }
  const seconds = Math.max((Date.now() - started) / 1000, 0.001);
  reporter.info(
    `${key}: downloaded ${source.display} to ${path} (${formatBytes(result.bytes)} in ${formatDuration(Date.now() - started)}, ${formatBytes(result.bytes / seconds)}/s)`,
  );
  return 'downloaded';
}

/** One GET into a partial file, verified where a SHA-256 is configured, renamed into place when whole. */
async function downloadOnce(
  ctx: BuildContext,
  key: InstallerKey,
  source: InstallerSource,
  path: string,
  headers: Record<string, string>,
): Promise<DownloadResult> {
  let response: DownloadResult = { status: 304 };
  await viaPartial(ctx, path, async (partial) => {
    response = await httpAttempt(ctx, key, source, partial, headers);
    if (response.status === 304) return false;
    if (source.sha256 && response.sha256 !== source.sha256) {
      throw mismatch(key, source, response.sha256, 'the download was deleted');
    }
    await chmod(partial, FILE_MODE);
    // Validators of the old file must not vouch for the new one, not even for a moment.
    await rm(sidecarPath(path), { force: true });
    return true;
  });
  return response;
}

/** If-None-Match / If-Modified-Since from the validators of the cached file, when they are its own. */
async function conditionalHeaders(
  path: string,
  cached: Stats,
  source: InstallerSource,
): Promise<Record<string, string>> {
  const validators = await readValidators(path);
  const headers: Record<string, string> = {};
  if (validators && validators.url === source.display && validators.size === cached.size) {
    if (validators.etag) headers['If-None-Match'] = validators.etag;
    if (validators.lastModified) headers['If-Modified-Since'] = validators.lastModified;
  }
  return headers;
}

async function readValidators(path: string): Promise<Validators | undefined> {
  try {
    const parsed = JSON.parse(await readFile(sidecarPath(path), 'utf8')) as Partial<Validators>;
    if (typeof parsed.url !== 'string' || typeof parsed.size !== 'number') return undefined;
    return {
      url: parsed.url,
      size: parsed.size,
      etag: typeof parsed.etag === 'string' ? parsed.etag : undefined,
      lastModified: typeof parsed.lastModified === 'string' ? parsed.lastModified : undefined,
    };
  } catch {
    return undefined;
  }
}

/** One GET into `partial`: the Downloader when one is given (tests), downloadFile otherwise. */
function httpAttempt(
  ctx: BuildContext,
  key: InstallerKey,
  source: InstallerSource,
  partial: string,
  conditionalHeaders: Record<string, string>,
): Promise<DownloadResult> {
  const progress = throttled(PROGRESS_INTERVAL_MS, (message) => ctx.reporter.progress('fetch', message));
  let started = Date.now();
  const download = ctx.download ?? downloadFile;
  return download(source.location, partial, {
    headers: conditionalHeaders,
    signal: ctx.signal,
    stallTimeoutMs: STALL_TIMEOUT_MS,
    mode: FILE_MODE,
    onProgress: (bytes, total) => {
      if (bytes === 0) {
        started = Date.now();
        progress(`${key}: downloading ${source.display}${total === undefined ? '' : ` (${formatBytes(total)})`}`, true);
        return;
      }
      const rate = bytes / Math.max((Date.now() - started) / 1000, 0.001);
      progress(
        total === undefined
          ? `${key}: ${formatBytes(bytes)}, ${formatBytes(rate)}/s`
          : `${key}: ${formatBytes(bytes)} of ${formatBytes(total)} (${Math.floor((100 * bytes) / Math.max(total, 1))}%), ${formatBytes(rate)}/s`,
      );
    },
  });
}

/** An error's message with those of its causes. */
function describeError(error: unknown): string {
  if (error instanceof CommandError) return describeRsyncFailure(error);
  if (!(error instanceof Error)) return String(error);
  const parts: string[] = [];
  for (let cause: unknown = error; cause instanceof Error && parts.length < 4; cause = cause.cause) {
    if (!parts.includes(cause.message)) parts.push(cause.message);
  }
  return parts.join(': ');
}

// ---------------------------------------------------------------------------
// rsync:

/** rsync writes a temporary file and renames it; its size-and-time check skips what is unchanged. */
function rsyncCommand(uri: string, path: string): string[] {
  return rsyncArgv({ flags: ['--times'], operands: [uri, path] });
}

async function fetchRsync(
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
    await withRetries(
      () =>
        ctx.host.run(argv, {
          env,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
          onLine: (line) => reporter.output(redactSecrets(line, secrets)),
        }),
      {
        what: `${key}: ${formatCommand(argv)}`,
        warn: (message) => reporter.warning(message),
        isTransient: isTransientRsyncFailure,
        describe: (error) => redactSecrets(describeRsyncFailure(error), secrets),
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
  if ((after.mode & 0o777) !== FILE_MODE) await chmod(path, FILE_MODE);
  if (source.sha256) {
    const actual = await sha256File(path, undefined, ctx.signal);
    if (actual !== source.sha256) {
      await removeCached(path);
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
