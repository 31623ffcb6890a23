import type { Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { InstallerSource } from '../../config/image-spec.js';
import { throttled } from '../../common/reporter.js';
import { formatBytes, formatDuration } from '../../common/units.js';
import type { BuildContext } from '../../context/build-context.js';
import { downloadFile, type DownloadResult } from '../../net/http-download.js';
import { downloadWithRetries } from '../../net/retry.js';
import { FILE_MODE, sidecarPath, statFile, viaPartial, type Outcome } from './cache-folder.js';
import { FetchError, mismatch, type InstallerKey } from './fetch-error.js';

/** An HTTP download that receives nothing for this long is retried. */
const STALL_TIMEOUT_MS = 60_000;
const PROGRESS_INTERVAL_MS = 5000;

interface Validators {
  /** The URI (password replaced) the validators belong to. */
  url: string;
  size: number;
  etag?: string;
  lastModified?: string;
}

export async function downloadHttp(
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

  const result = await downloadWithRetries(source, () => downloadOnce(ctx, key, source, path, headers), {
    label: `${key}: `,
    warn: (message) => reporter.warning(message),
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
    await ctx.host.writeFile(sidecarPath(path), `${JSON.stringify(fresh)}\n`, FILE_MODE);
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
    await ctx.host.chmod(partial, FILE_MODE);
    // Validators of the old file must not vouch for the new one, not even for a moment.
    await ctx.host.remove(sidecarPath(path));
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
