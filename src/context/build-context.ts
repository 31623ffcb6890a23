import type { ImageSpec } from '../config/image-spec.js';
import type { VmAccelerator } from '../host/accelerator.js';
import type { Clock } from '../host/clock.js';
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
  /** What the VMs and the appliance run on, chosen once before the build starts. */
  accelerator: VmAccelerator;
  reporter: Reporter;
  cleanup: UndoList;
  signal?: AbortSignal;
  /** The time the install watch reads and ticks by (the machine's clock when not given). */
  clock?: Clock;
  /** Stands in for downloadFile in the fetch step's downloads (tests count its tries or shorten its deadline). */
  download?: Downloader;
}
