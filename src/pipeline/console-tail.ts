import { open, stat } from 'node:fs/promises';

/** A file that another process appends to (virtlogd's console logs): hands out what was added since the last read. */
export class AppendedFile {
  private offset = 0;

  constructor(private readonly path: string) {}

  /** The bytes appended since the last call; empty while the file does not exist or has not grown. */
  async readNew(): Promise<Buffer> {
    let size: number;
    try {
      size = (await stat(this.path)).size;
    } catch {
      return Buffer.alloc(0);
    }
    if (size <= this.offset) return Buffer.alloc(0);
    const handle = await open(this.path, 'r');
    try {
      const chunks: Buffer[] = [];
      while (this.offset < size) {
        const buffer = Buffer.alloc(Math.min(size - this.offset, 1 << 20));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        chunks.push(buffer.subarray(0, bytesRead));
      }
      return Buffer.concat(chunks);
    } finally {
      await handle.close();
    }
  }
}

/**
 * Follows a console log that virtlogd appends to: new complete lines go to
 * `onLine`, and the last few are kept for progress and error messages.
 */
export class ConsoleTail {
  private readonly file: AppendedFile;
  private pending = '';
  private readonly recent: string[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    path: string,
    private readonly onLine?: (line: string) => void,
    private readonly keep = 20,
  ) {
    this.file = new AppendedFile(path);
  }

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
    const added = await this.file.readNew();
    if (added.length === 0) return;
    const parts = (this.pending + added.toString('utf8')).split(/\r?\n/);
    this.pending = parts.pop() ?? '';
    for (const part of parts) this.accept(part);
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
