import type { ImageSpec } from '../config/image-spec.js';
import type { Host } from '../host/host.js';
import type { Reporter } from './reporter.js';
import type { CleanupStack } from './resources.js';

/** Fetches a URL into a file; the action swaps in @actions/tool-cache's downloader. */
export type Downloader = (url: string, destination: string, headers: Record<string, string>) => Promise<DownloadResponse>;

export interface DownloadResponse {
  /** 200 with the body written to destination, or 304 with nothing written. */
  status: 200 | 304;
  etag?: string;
  lastModified?: string;
}

/** What every step receives. */
export interface BuildContext {
  spec: ImageSpec;
  /** Where every command and file change goes: the machine, or a recording of it (--dry-run, step tests). */
  host: Host;
  reporter: Reporter;
  cleanup: CleanupStack;
  signal?: AbortSignal;
  /** Replaces the built-in HTTP client for installer downloads (optional). */
  download?: Downloader;
}
