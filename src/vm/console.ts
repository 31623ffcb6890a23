import { constants, type BigIntStats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { TerminalScreen } from './screen.js';

/** One file of a rotated log, open: which file it is and how far it was read. */
interface OpenPart {
  handle: FileHandle;
  dev: bigint;
  ino: bigint;
  offset: number;
}

/** More files than a log rotated between two reads could ever hold: a bound for a log replaced in a loop. */
const MAX_PARTS_PER_READ = 16;
const READ_CHUNK = 1 << 20;

const sameFile = (stats: BigIntStats | undefined, part: OpenPart): boolean =>
  stats !== undefined && stats.dev === part.dev && stats.ino === part.ino;

async function statOf(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function openPart(path: string): Promise<OpenPart | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const stats = await handle.stat({ bigint: true });
  return { handle, dev: stats.dev, ino: stats.ino, offset: 0 };
}

/**
 * A log that another process appends to and rotates: virtlogd's console
 * logs. At max_size (2 MiB by default) virtlogd closes the log, removes the
 * oldest of its max_backups (3 by default), renames `log.0` to `log.1` and so
 * on, `log` to `log.0`, and starts a new `log`. The log is followed by file
 * identity, not by name: the file being read stays open, so what was written
 * to it is read to its end wherever it went (even once removed), and then
 * the file that came after it. Only more rotations between two reads than
 * there are backups (8 MiB in a second by default) would lose a file.
 */
export class RotatingLog {
  private part?: OpenPart;

  constructor(private readonly path: string) {}

  /** The bytes written since the last call, across rotations; empty while the log does not exist or has not grown. */
  async readNew(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    this.part ??= await this.openFirst();
    for (let parts = 0; this.part && parts < MAX_PARTS_PER_READ; parts++) {
      const part = this.part;
      const readTo = part.offset;
      // Looked at before the file is read to its end: virtlogd closes a file before it renames it, so once
      // `path` is another file, the one read here gets nothing more.
      const named = await statOf(this.path);
      await this.readToEnd(part, chunks);
      // No log for a moment between virtlogd's renames and its new log: the next read goes on.
      if (named === undefined) break;
      if (sameFile(named, part)) {
        if (named.size >= readTo) break;
        // Cut short in place (copytruncate): written again from its start.
        part.offset = 0;
        continue;
      }
      const next = await this.successor(part);
      if (!next) break;
      await part.handle.close();
      this.part = next;
    }
    return Buffer.concat(chunks);
  }

  async close(): Promise<void> {
    await this.part?.handle.close();
    this.part = undefined;
  }

  /** The oldest file of the log: a rotation may have come before the first read. */
  private async openFirst(): Promise<OpenPart | undefined> {
    const backups = await this.backups();
    return openPart(backups.length > 0 ? `${this.path}.${backups.length - 1}` : this.path);
  }

  /** `log.0`, `log.1`, … as they are now, up to the first that does not exist. */
  private async backups(): Promise<BigIntStats[]> {
    const found: BigIntStats[] = [];
    for (let n = 0; n < MAX_PARTS_PER_READ; n++) {
      const stats = await statOf(`${this.path}.${n}`);
      if (!stats) break;
      found.push(stats);
    }
    return found;
  }

  /**
   * The file written after `part`: if `part` is `log.N` now, `log.N-1` (`log`
   * after `log.0`); if it was rotated away, the oldest backup. Undefined
   * while that file does not exist yet.
   */
  private async successor(part: OpenPart): Promise<OpenPart | undefined> {
    for (let attempt = 0; attempt < MAX_PARTS_PER_READ; attempt++) {
      const backups = await this.backups();
      const index = backups.findIndex((stats) => sameFile(stats, part));
      const name =
        index === 0
          ? this.path
          : index > 0
            ? `${this.path}.${index - 1}`
            : backups.length > 0
              ? `${this.path}.${backups.length - 1}`
              : this.path;
      const next = await openPart(name);
      // `part` still where it was seen: no rotation came between the look and the open.
      if (index < 0 || sameFile(await statOf(`${this.path}.${index}`), part)) return next;
      await next?.handle.close();
    }
    return undefined;
  }

  private async readToEnd(part: OpenPart, chunks: Buffer[]): Promise<void> {
    for (;;) {
      const { size } = await part.handle.stat();
      if (size <= part.offset) return;
      const buffer = Buffer.alloc(Math.min(size - part.offset, READ_CHUNK));
      const { bytesRead } = await part.handle.read(buffer, 0, buffer.length, part.offset);
      if (bytesRead === 0) return;
      part.offset += bytesRead;
      chunks.push(buffer.subarray(0, bytesRead));
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
  private readonly log: RotatingLog;
  private readonly decoder = new StringDecoder('utf8');
  private complete = '';
  /** Raw text after the last newline: an escape sequence may be cut in two by a read. */
  private pending = '';
  /** Reads one after the other: two at once would hand out the same bytes twice. */
  private reading: Promise<void> = Promise.resolve();
  private copyHandle?: FileHandle;
  private stopped = false;
  /** Why the copy stopped (a full disk, a link in its place); the console is followed on without it. */
  copyError?: Error;
  /** Bytes read from the console so far (the install watch times the install's phases by it). */
  bytesRead = 0;

  /**
   * `copy`: a file that gets every byte read, in order: the whole console in
   * one file, which virtlogd's rotated log is not.
   */
  constructor(
    path: string,
    private readonly onLine?: (line: string) => void,
    private readonly copy?: string,
  ) {
    this.log = new RotatingLog(path);
  }

  /**
   * Read what was written until now and stop: the unfinished line counts as
   * a line, the screen keeps its last state as text, later calls do nothing.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.poll();
    } finally {
      this.stopped = true;
      await this.log.close();
      await this.copyHandle?.close();
      if (this.pending !== '') this.accept('\n');
      this.screen.dispose();
    }
  }

  /** Read what was written since the last poll. */
  poll(): Promise<void> {
    const read = this.reading.catch(() => undefined).then(() => this.read());
    this.reading = read;
    return read;
  }

  private async read(): Promise<void> {
    if (this.stopped) return;
    const added = await this.log.readNew();
    if (added.length === 0) return;
    this.bytesRead += added.length;
    const text = this.decoder.write(added);
    this.accept(text);
    await this.keep(added);
    await this.screen.write(text);
  }

  /** Appended to the copy; created without following a link if the caller has not made it. */
  private async keep(bytes: Buffer): Promise<void> {
    if (this.copy === undefined || this.copyError) return;
    try {
      this.copyHandle ??= await open(
        this.copy,
        constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
        0o644,
      );
      await this.copyHandle.appendFile(bytes);
    } catch (error) {
      this.copyError = error instanceof Error ? error : new Error(String(error));
    }
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
