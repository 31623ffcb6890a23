import type { Clock } from '../../src/host/clock.js';

interface Ticker {
  intervalMs: number;
  due: number;
  tick: () => unknown;
}

/**
 * A clock that moves only when a test says so: `advance` runs every tick due
 * on the way, in time order, and waits for each (a watch's tick reads files),
 * so that what a watch does in a minute is done in milliseconds and in the
 * same order on a busy machine as on an idle one.
 */
export class FakeClock implements Clock {
  private time: number;
  private readonly tickers = new Set<Ticker>();

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  /** Whether anything ticks by this clock (a watch has started and not finished). */
  get ticking(): boolean {
    return this.tickers.size > 0;
  }

  now(): number {
    return this.time;
  }

  every(intervalMs: number, tick: () => unknown): () => void {
    const ticker = { intervalMs, due: this.time + intervalMs, tick };
    this.tickers.add(ticker);
    return () => this.tickers.delete(ticker);
  }

  /** Moves the time `ms` on, running each tick when its time comes. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const next = [...this.tickers].sort((a, b) => a.due - b.due)[0];
      if (!next || next.due > end) break;
      this.time = next.due;
      next.due += next.intervalMs;
      await next.tick();
    }
    this.time = end;
  }
}
