export type Step =
  | 'fetch'
  | 'disk'
  | 'install'
  | 'provision'
  | 'scrub'
  | 'convert'
  | 'checksum'
  | 'reports'
  | 'publish'
  | 'boot-test'
  | 'upload'
  | 'post-build';

export const STEP_TITLES: Record<Step, string> = {
  fetch: 'Fetch the installer kernel and initrd',
  disk: 'Create the raw disk',
  install: 'Run the unattended installer',
  provision: 'Boot the installed system and run the provisioners over SSH',
  scrub: 'Read the installed system, remove installer logs, generalise, zero free space',
  convert: 'Convert to the image formats',
  checksum: 'Compute the SHA-256',
  reports: 'Write the package manifest, the SBOM and the checksums',
  publish: 'Move the finished files into place',
  'boot-test': 'Boot the finished image',
  upload: 'Upload',
  'post-build': 'Run the post-build command',
};

/**
 * What the pipeline tells the world. The command line prints timestamped log
 * lines; the action folds steps into groups, annotations and a job summary.
 */
export interface Reporter {
  info(message: string): void;
  /** Something the user should know that is not a problem (a repaired host, say). */
  notice(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** An external command about to run. */
  command(argv: readonly string[]): void;
  /** A line an external command printed. */
  output(line: string): void;
  stepStarted(step: Step): void;
  stepFinished(step: Step, durationMs: number, ok: boolean): void;
  /** Progress of a long step; callers already keep this to a calm rate. */
  progress(step: Step, message: string): void;
  /**
   * A part of the running step with a title of its own (a provisioner): the
   * action folds it into a group of its own, until the next part or the step's end.
   */
  section?(title: string): void;
}

/** Lets through at most one message per interval, always the latest. */
export function throttled(
  intervalMs: number,
  emit: (message: string) => void,
  now: () => number = Date.now,
): (message: string, force?: boolean) => void {
  let last = 0;
  return (message, force = false) => {
    const at = now();
    if (force || at - last >= intervalMs) {
      last = at;
      emit(message);
    }
  };
}
