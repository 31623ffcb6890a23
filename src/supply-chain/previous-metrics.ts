import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstallerSource } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import { downloadMetadata } from '../net/metadata-download.js';
import { failureReason } from '../net/retry.js';
import type { Downloader } from '../context/build-context.js';
import type { Reporter } from '../common/reporter.js';
import { boundedHistory, parseMetrics, type BuildMetrics } from './metrics.js';

/** A metrics file is a few KiB; anything much larger is not one. */
const MAX_METRICS_BYTES = 4 * 2 ** 20;

interface LoadOptions {
  reporter: Reporter;
  live: boolean;
  download?: Downloader;
  signal?: AbortSignal;
}

/**
 * Read `previous-metrics` before the build creates anything, oldest first
 * and at most the last twelve. As previous-manifest: a path that cannot be
 * read, or content that is not metrics, is bad input (exit 2); a URL that
 * cannot be fetched only warns and is left out of the history.
 */
export async function loadPreviousMetrics(
  sources: readonly InstallerSource[],
  options: LoadOptions,
): Promise<BuildMetrics[]> {
  const builds: BuildMetrics[] = [];
  for (const source of sources) {
    const text = await metricsText(source, options);
    if (text === undefined) continue;
    try {
      builds.push(parseMetrics(text));
    } catch (error) {
      throw new UsageError(
        `previous-metrics: ${source.display} ${(error as Error).message}; give an <image>-<date>.metrics.json of an earlier build.`,
      );
    }
  }
  const history = boundedHistory(builds);
  if (history.length) options.reporter.info(`Previous metrics: ${history.map((build) => build.image).join(', ')}`);
  return history;
}

/** A file's text, or a URL's; undefined when a URL could not be had (warned) or in a dry run. */
async function metricsText(source: InstallerSource, options: LoadOptions): Promise<string | undefined> {
  if (source.scheme === 'file') {
    try {
      return await readFile(source.location, 'utf8');
    } catch (error) {
      throw new UsageError(`previous-metrics: ${source.display} cannot be read: ${(error as Error).message}`);
    }
  }
  if (!options.live) {
    options.reporter.info(`would download the previous metrics ${source.display}`);
    return undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), 'image-factory-metrics-'));
  try {
    const path = join(dir, 'metrics.json');
    await downloadMetadata(source, path, {
      maxBytes: MAX_METRICS_BYTES,
      mode: 0o600,
      warn: (message) => options.reporter.warning(message),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.download ? { download: options.download } : {}),
    });
    return await readFile(path, 'utf8');
  } catch (error) {
    if (options.signal?.aborted) throw error;
    options.reporter.warning(
      `previous-metrics: ${source.display} could not be downloaded (${failureReason(error, source)}): left out of the history`,
    );
    return undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
