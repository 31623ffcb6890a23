import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstallerSource } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import { TooLargeError } from '../net/http-download.js';
import { downloadMetadata } from '../net/metadata-download.js';
import { failureReason } from '../net/retry.js';
import { parseManifest, type PreviousManifest } from './changes.js';
import type { Downloader } from '../context/build-context.js';
import type { Reporter } from '../common/reporter.js';

/** The previous build's manifest, or why none could be had (a URL that could not be fetched). */
export type LoadedPrevious = { manifest: PreviousManifest } | { unavailable: string; source: string };

/** A manifest is a few MB at most; anything much larger is not one. */
const MAX_MANIFEST_BYTES = 64 * 2 ** 20;

/**
 * Read `previous-manifest` before the build creates anything. A path that
 * cannot be read, or content that is not a manifest (from a path or a URL),
 * is bad input (UsageError: exit 2): the user named the wrong thing, and
 * finding out after a long install helps nobody. A URL that cannot be
 * fetched (server down, 404) only warns: the image is still worth building,
 * and its `.changes` file says why nothing was compared.
 */
export async function loadPreviousManifest(
  source: InstallerSource,
  options: { reporter: Reporter; live: boolean; download?: Downloader; signal?: AbortSignal },
): Promise<LoadedPrevious> {
  const where = `previous-manifest: the previous manifest ${source.display}`;
  let text: string;
  if (source.scheme === 'file') {
    try {
      text = await readFile(source.location, 'utf8');
    } catch (error) {
      throw new UsageError(`${where} cannot be read: ${(error as Error).message}`);
    }
  } else if (!options.live) {
    options.reporter.info(`would download the previous manifest ${source.display}`);
    return { unavailable: 'not downloaded in a dry run', source: source.display };
  } else {
    const fetched = await fetchManifest(source, options);
    if ('unavailable' in fetched) {
      options.reporter.warning(
        `${where} could not be downloaded (${fetched.unavailable}): the image is built without a changes report against it`,
      );
      return { unavailable: fetched.unavailable, source: source.display };
    }
    text = fetched.text;
  }
  try {
    const manifest = parseManifest(text, source.display);
    options.reporter.info(
      `Previous manifest ${source.display}: ${manifest.image || 'an image'}${manifest.date ? ` of ${manifest.date}` : ''}, ${manifest.packages.length} packages`,
    );
    return { manifest };
  } catch (error) {
    throw new UsageError(`${where} ${(error as Error).message}.`);
  }
}

/** GET the manifest into a private temporary folder, with the build's retries; its text, or why not. */
async function fetchManifest(
  source: InstallerSource,
  options: { reporter: Reporter; download?: Downloader; signal?: AbortSignal },
): Promise<{ text: string } | { unavailable: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'image-factory-previous-'));
  try {
    const path = join(dir, 'manifest.json');
    await downloadMetadata(source, path, {
      maxBytes: MAX_MANIFEST_BYTES,
      mode: 0o600,
      warn: (message) => options.reporter.warning(message),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.download ? { download: options.download } : {}),
    });
    return { text: await readFile(path, 'utf8') };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    if (error instanceof TooLargeError) {
      throw new UsageError(
        `previous-manifest: ${source.display} is larger than any manifest (${error.message}); give a <image>-<date>.manifest.json of an earlier build.`,
      );
    }
    return { unavailable: failureReason(error, source) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
