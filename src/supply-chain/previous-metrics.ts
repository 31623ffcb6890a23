import type { InstallerSource } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import { boundedHistory, parseMetrics, type BuildMetrics } from './metrics.js';
import { readPreviousFile, type PreviousFileOptions, type PreviousKind } from './previous-file.js';

/** A metrics file is a few KiB; anything much larger is not one. */
const METRICS: PreviousKind = {
  option: 'previous-metrics',
  what: 'previous metrics',
  noun: 'metrics file',
  example: 'an <image>-<date>.metrics.json',
  maxBytes: 4 * 2 ** 20,
};

/**
 * Read `previous-metrics` before the build creates anything, oldest first
 * and at most the last twelve. As previous-manifest: a path that cannot be
 * read, or content that is not metrics, is bad input (exit 2); a URL that
 * cannot be fetched only warns and is left out of the history.
 */
export async function loadPreviousMetrics(
  sources: readonly InstallerSource[],
  options: PreviousFileOptions,
): Promise<BuildMetrics[]> {
  const builds: BuildMetrics[] = [];
  for (const source of sources) {
    const read = await readPreviousFile(source, METRICS, options);
    if ('unavailable' in read) {
      if (options.live)
        options.reporter.warning(
          `previous-metrics: ${source.display} could not be downloaded (${read.unavailable}): left out of the history`,
        );
      continue;
    }
    try {
      builds.push(parseMetrics(read.text));
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
