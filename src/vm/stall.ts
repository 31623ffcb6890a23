/**
 * Tells an installer that waits for an answer from one that works: it is
 * stalled when neither its screen (compared as screenFingerprint says: a
 * status line's clock is no change) nor its disk (the raw file's allocated
 * blocks) has changed for `limitMs`. Console bytes alone prove nothing: a
 * clock redrawn every minute keeps them coming while the installer waits for
 * ever. The disk counts because an installer that unpacks packages or fills
 * a file system may print nothing for a long time.
 */
export class StallDetector {
  private screen?: string;
  private blocks?: number;
  private lastChange: number;

  /** `limitMs` 0: never stalled. Times are the watch's clock's (milliseconds). */
  constructor(
    readonly limitMs: number,
    now: number,
  ) {
    this.lastChange = now;
  }

  /** The screen as it is now (its fingerprint). */
  seeScreen(fingerprint: string, now: number): void {
    if (fingerprint !== this.screen) this.lastChange = now;
    this.screen = fingerprint;
  }

  /** The disk's allocated blocks now; any change (written, or trimmed) is activity. */
  seeDisk(blocks: number, now: number): void {
    if (this.blocks !== undefined && blocks !== this.blocks) this.lastChange = now;
    this.blocks = blocks;
  }

  /** How long neither the screen nor the disk has changed. */
  quietFor(now: number): number {
    return now - this.lastChange;
  }

  stalled(now: number): boolean {
    return this.limitMs > 0 && this.quietFor(now) >= this.limitMs;
  }
}
