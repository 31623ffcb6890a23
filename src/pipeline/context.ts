import type { ImageSpec } from '../config/image-spec.js';
import type { Clock } from '../host/clock.js';
import type { Host } from '../host/host.js';
import type { downloadFile } from '../net/http-download.js';
import type { Reporter } from './reporter.js';
import type { CleanupStack } from './resources.js';

/** Fetches a URL into a file, one attempt: downloadFile's shape, for a stand-in. */
export type Downloader = typeof downloadFile;

/** What every step receives. */
export interface BuildContext {
  spec: ImageSpec;
  /** Where every command and file change goes: the machine, or a recording of it (--dry-run, step tests). */
  host: Host;
  reporter: Reporter;
  cleanup: CleanupStack;
  signal?: AbortSignal;
  /** The time the install watch reads and ticks by (the machine's clock when not given). */
  clock?: Clock;
  /** Replaces downloadFile for installer downloads (optional; nothing in the project sets it now). */
  download?: Downloader;
}
