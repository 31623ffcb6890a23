import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Reporter } from '../common/reporter.js';
import type { InstallerSource } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import type { Downloader } from '../context/build-context.js';
import { TooLargeError } from '../net/http-download.js';
import { downloadMetadata } from '../net/metadata-download.js';
import { failureReason } from '../net/retry.js';

export interface PreviousFileOptions {
  reporter: Reporter;
  live: boolean;
  download?: Downloader;
  signal?: AbortSignal;
}

/** What a previous build's file is, for messages: its option, what it is, the file an earlier build wrote. */
export interface PreviousKind {
  option: 'previous-manifest' | 'previous-metrics';
  /** `previous manifest`: what the option names. */
  what: string;
  /** `manifest`: what a file too large is not. */
  noun: string;
  example: string;
  maxBytes: number;
}

/**
 * A previous build's file (manifest, metrics), read before the build creates
 * anything: its text, or why a URL could not be had. A path that cannot be
 * read, or a file larger than any such file, is bad input (UsageError: exit
 * 2): the user named the wrong thing, and finding out after a long install
 * helps nobody. A URL that cannot be fetched (server down, 404) is only
 * unavailable: the caller warns and builds on. A URL is fetched into a
 * private temporary folder with the build's retries; a dry run fetches none.
 */
export async function readPreviousFile(
  source: InstallerSource,
  kind: PreviousKind,
  options: PreviousFileOptions,
): Promise<{ text: string } | { unavailable: string }> {
  const where = `${kind.option}: the ${kind.what} ${source.display}`;
  if (source.scheme === 'file') {
    try {
      return { text: await readFile(source.location, 'utf8') };
    } catch (error) {
      throw new UsageError(`${where} cannot be read: ${(error as Error).message}`);
    }
  }
  if (!options.live) {
    options.reporter.info(`would download the ${kind.what} ${source.display}`);
    return { unavailable: 'not downloaded in a dry run' };
  }
  const dir = await mkdtemp(join(tmpdir(), 'image-factory-previous-'));
  try {
    const path = join(dir, 'previous.json');
    await downloadMetadata(source, path, {
      maxBytes: kind.maxBytes,
      mode: 0o600,
      warn: (message) => options.reporter.warning(message),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.download ? { download: options.download } : {}),
    });
    return { text: await readFile(path, 'utf8') };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    if (error instanceof TooLargeError)
      throw new UsageError(
        `${kind.option}: ${source.display} is larger than any ${kind.noun} (${error.message}); give ${kind.example} of an earlier build.`,
      );
    return { unavailable: failureReason(error, source) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
