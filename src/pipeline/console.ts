import { open, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { TerminalScreen } from './screen.js';

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

/** The DEC special graphics set (`ESC ( 0`) that newt and curses draw boxes with on a serial terminal. */
const DEC_GRAPHICS: Record<string, string> = {
  '`': '◆',
  a: '▒',
  j: '┘',
  k: '┐',
  l: '┌',
  m: '└',
  n: '┼',
  q: '─',
  t: '├',
  u: '┤',
  v: '┴',
  w: '┬',
  x: '│',
  '~': '·',
};

/** Text between `ESC ( 0` and `ESC ( B` drawn as the box characters it stands for (escape sequences in it kept). */
function decLineDrawing(raw: string): string {
  let graphics = false;
  return (
    raw
      // eslint-disable-next-line no-control-regex
      .split(/(\x1b\([0-9A-Za-z])/)
      .map((part) => {
        if (part.startsWith('\x1b(')) {
          graphics = part[2] === '0';
          return part;
        }
        if (!graphics) return part;
        // eslint-disable-next-line no-control-regex
        return part.replace(/(\x1b\[[0-9;?]*[ -/]*[@-~])|([`a-z~])/g, (all, csi?: string, char?: string) =>
          csi !== undefined ? csi : (DEC_GRAPHICS[char ?? ''] ?? all),
        );
      })
      .join('')
  );
}

/**
 * Terminal escape sequences, carriage returns and other control characters
 * out, line drawing as box characters; lines kept.
 */
export function cleanConsoleText(raw: string): string {
  return (
    decLineDrawing(raw)
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]/g, '')
      .replace(/\r\n/g, '\n')
      .replace(/\r/g, '\n')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
  );
}

/** The console text kept for matching and quoting (a boot prints far less; an install is quoted from its end). */
const MAX_TEXT_CHARS = 4 << 20;
const KEEP_LINES = 20;

/**
 * Follows the serial console log of a VM that virtlogd writes. Complete lines
 * go to `onLine` as they arrive; the cleaned text so far (the unfinished last
 * line included: a login prompt ends without a newline) is kept for matching,
 * and its last lines for progress. The same bytes go to a terminal emulator:
 * `screen` is what a person at the console would see, for stall detection,
 * the progress line and error messages.
 */
export class ConsoleFollower {
  readonly screen = new TerminalScreen();
  private readonly file: AppendedFile;
  private readonly decoder = new StringDecoder('utf8');
  private complete = '';
  /** Raw text after the last newline: an escape sequence may be cut in two by a read. */
  private pending = '';
  private timer?: NodeJS.Timeout;

  constructor(
    path: string,
    private readonly onLine?: (line: string) => void,
  ) {
    this.file = new AppendedFile(path);
  }

  /** Poll the file every `intervalMs` until stop(). */
  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.poll(), intervalMs);
    this.timer.unref();
  }

  /**
   * Stop polling; what was written until now is read, and the unfinished line
   * counts as a line. The screen keeps its last state as text.
   */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.poll();
    if (this.pending !== '') this.accept('\n');
    this.screen.dispose();
  }

  async poll(): Promise<void> {
    const added = await this.file.readNew();
    if (added.length === 0) return;
    const text = this.decoder.write(added);
    this.accept(text);
    await this.screen.write(text);
  }

  /** The cleaned console text so far, the unfinished last line included. */
  get text(): string {
    return this.complete + cleanConsoleText(this.pending);
  }

  lastLines(count = KEEP_LINES): string[] {
    return this.text
      .split('\n')
      .map((line) => line.trimEnd())
      .filter((line) => line.trim() !== '')
      .slice(-count);
  }

  latest(): string | undefined {
    return this.lastLines(1)[0];
  }

  private accept(raw: string): void {
    const text = this.pending + raw;
    const end = text.lastIndexOf('\n') + 1;
    const lines = cleanConsoleText(text.slice(0, end));
    this.pending = text.slice(end);
    this.complete += lines;
    if (this.complete.length > MAX_TEXT_CHARS) this.complete = this.complete.slice(-MAX_TEXT_CHARS);
    if (!this.onLine) return;
    for (const line of lines.split('\n')) {
      const trimmed = line.trimEnd();
      if (trimmed.trim() !== '') this.onLine(trimmed);
    }
  }
}
