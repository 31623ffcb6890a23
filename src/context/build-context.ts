import type { ImageSpec } from '../config/image-spec.js';
import type { Host } from '../host/host.js';
import type { downloadFile } from '../net/http-download.js';
import type { Reporter } from '../common/reporter.js';
import type { UndoList } from './undo-list.js';

/** Fetches a URL into a file, one attempt: downloadFile's shape, for a stand-in. */
export type Downloader = typeof downloadFile;

/** What every step receives. */
export interface BuildContext {
  spec: ImageSpec;
  /** Where every command and file change goes: the machine, or a recording of it (--dry-run, step tests). */
  host: Host;
  reporter: Reporter;
  cleanup: UndoList;
  signal?: AbortSignal;
  /** Replaces downloadFile for installer downloads (optional; nothing in the project sets it now). */
  download?: Downloader;
}
