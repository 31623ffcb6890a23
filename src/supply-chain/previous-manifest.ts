import type { InstallerSource } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import { parseManifest, type PreviousManifest } from './changes.js';
import { readPreviousFile, type PreviousFileOptions, type PreviousKind } from './previous-file.js';

/** The previous build's manifest, or why none could be had (a URL that could not be fetched). */
export type LoadedPrevious = { manifest: PreviousManifest } | { unavailable: string; source: string };

/** A manifest is a few MB at most; anything much larger is not one. */
const MANIFEST: PreviousKind = {
  option: 'previous-manifest',
  what: 'previous manifest',
  noun: 'manifest',
  example: 'a <image>-<date>.manifest.json',
  maxBytes: 64 * 2 ** 20,
};

/**
 * Read `previous-manifest` before the build creates anything (readPreviousFile):
 * content that is not a manifest, from a path or a URL, is bad input too. A URL
 * that cannot be fetched only warns: the image is still worth building, and its
 * `.changes` file says why nothing was compared.
 */
export async function loadPreviousManifest(
  source: InstallerSource,
  options: PreviousFileOptions,
): Promise<LoadedPrevious> {
  const read = await readPreviousFile(source, MANIFEST, options);
  if ('unavailable' in read) {
    if (options.live)
      options.reporter.warning(
        `previous-manifest: the previous manifest ${source.display} could not be downloaded (${read.unavailable}): the image is built without a changes report against it`,
      );
    return { unavailable: read.unavailable, source: source.display };
  }
  try {
    const manifest = parseManifest(read.text, source.display);
    options.reporter.info(
      `Previous manifest ${source.display}: ${manifest.image || 'an image'}${manifest.date ? ` of ${manifest.date}` : ''}, ${manifest.packages.length} packages`,
    );
    return { manifest };
  } catch (error) {
    throw new UsageError(`previous-manifest: the previous manifest ${source.display} ${(error as Error).message}.`);
  }
}
