/**
 * The time a build reads and the ticks it waits for: the machine's clock, or
 * a test's (test/support/fake-clock.ts), which moves only when told, so that a
 * test of a minute's watch runs in milliseconds.
 */
export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
  /**
   * Calls `tick` every `intervalMs` until the returned function is called. A
   * tick may return a promise: a fake clock waits for it before the next.
   */
  every(intervalMs: number, tick: () => unknown): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  every(intervalMs, tick) {
    const timer = setInterval(tick, intervalMs);
    // A watch left running must not keep the process alive.
    timer.unref();
    return () => clearInterval(timer);
  },
};
