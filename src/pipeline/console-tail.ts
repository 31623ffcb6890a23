import { open, stat } from 'node:fs/promises';

/**
 * Follows a console log that virtlogd appends to: new complete lines go to
 * `onLine`, and the last few are kept for progress and error messages.
 */
export class ConsoleTail {
  private offset = 0;
  private pending = '';
  private readonly recent: string[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly path: string,
    private readonly onLine?: (line: string) => void,
    private readonly keep = 20,
  ) {}

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.poll(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.poll();
    if (this.pending.trim()) this.accept(this.pending);
    this.pending = '';
  }

  lastLines(count = this.keep): string[] {
    return this.recent.slice(-count);
  }

  latest(): string | undefined {
    return this.recent[this.recent.length - 1];
  }

  async poll(): Promise<void> {
    let size: number;
    try {
      size = (await stat(this.path)).size;
    } catch {
      return;
    }
    if (size <= this.offset) return;
    const handle = await open(this.path, 'r');
    try {
      const length = Math.min(size - this.offset, 1 << 20);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, this.offset);
      this.offset += bytesRead;
      const parts = (this.pending + buffer.subarray(0, bytesRead).toString('utf8')).split(/\r?\n/);
      this.pending = parts.pop() ?? '';
      for (const part of parts) this.accept(part);
    } finally {
      await handle.close();
    }
  }

  private accept(raw: string): void {
    // Terminal control sequences and carriage returns make unreadable log lines.
    // eslint-disable-next-line no-control-regex
    const line = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '').trimEnd();
    if (!line.trim()) return;
    this.recent.push(line);
    if (this.recent.length > this.keep) this.recent.shift();
    this.onLine?.(line);
  }
}
