import type { Reporter } from '../common/reporter.js';

/**
 * SIGINT and SIGTERM abort the build, which then cleans up; a second signal
 * only says to wait. (A runner sends SIGINT, then SIGTERM 7.5 s later, then
 * kills: cleanup must start at the first.)
 */
export class Interruption {
  private readonly controller = new AbortController();
  /** The first signal received, if any. */
  by?: NodeJS.Signals;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.by) {
      this.reporter.warning(`${signal} received again: ${this.stillCleaning}`);
      return;
    }
    this.by = signal;
    this.reporter.warning(`${signal} received: stopping the build and cleaning up`);
    this.controller.abort();
  };

  constructor(
    private readonly reporter: Reporter,
    private readonly stillCleaning = 'still cleaning up, please wait',
  ) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
