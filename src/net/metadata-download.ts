import type { InstallerSource } from '../config/image-spec.js';
import { redactSecrets, secretVariants } from '../common/credentials.js';
import { downloadFile, isTransientHttpFailure } from './http-download.js';
import { withRetries } from './retry.js';

/** The longest one try at a metadata file may take: a few MB, even over a slow link, come in well under it. */
export const METADATA_DEADLINE_MS = 5 * 60_000;

export interface MetadataDownload {
  /** The most the file may hold: a larger one is refused while it arrives. */
  maxBytes: number;
  /** Where the warning before each retry goes. */
  warn: (message: string) => void;
  signal?: AbortSignal;
  /** Mode of the file created (default 0644). */
  mode?: number;
  /** Stands in for downloadFile (tests). */
  download?: typeof downloadFile;
}

/**
 * A small file the build reads, not an installer file (a checksum list, its
 * signature, a release file, a previous manifest), into `path` with the
 * build's retries: bounded in size and, each try, in time. A failed try
 * leaves no file behind, so the next starts clean. Throws the last failure.
 */
export async function downloadMetadata(
  source: InstallerSource,
  path: string,
  options: MetadataDownload,
): Promise<void> {
  const download = options.download ?? downloadFile;
  const settings = {
    maxBytes: options.maxBytes,
    deadlineMs: METADATA_DEADLINE_MS,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.mode !== undefined ? { mode: options.mode } : {}),
  };
  await withRetries(() => download(source.location, path, settings), {
    what: `downloading ${source.display}`,
    warn: options.warn,
    isTransient: isTransientHttpFailure,
    describe: (error) => failureReason(error, source),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** Why a download of `source` failed, without the URI's password. */
export function failureReason(error: unknown, source: InstallerSource): string {
  const message = error instanceof Error ? error.message : String(error);
  return redactSecrets(message, secretVariants(source.uri));
}
