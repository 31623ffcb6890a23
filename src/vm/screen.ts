import xterm from '@xterm/headless';

/**
 * The size an installer on a serial console draws for: a serial line reports
 * no window size, so newt/slang, ncurses and GNU screen fall back to 80x24.
 */
export const SCREEN_COLUMNS = 80;
export const SCREEN_ROWS = 24;

/**
 * The installer's screen as a person at the serial console would see it: the
 * console's bytes fed to a terminal emulator (xterm.js, headless), which
 * applies cursor movement, clears and the DEC line-drawing character set
 * (drawn as box characters), and rendered back as lines of text.
 */
export class TerminalScreen {
  private readonly terminal = new xterm.Terminal({
    cols: SCREEN_COLUMNS,
    rows: SCREEN_ROWS,
    scrollback: 0,
    // A console whose guest does not turn \n into \r\n still renders as lines.
    convertEol: true,
    allowProposedApi: true,
    // A guest's bytes that the parser cannot take would be logged with console.error, parser state and
    // all, into the build's own output: the screen shows what it can, and says nothing of the rest.
    logLevel: 'off',
  });
  private disposed?: string[];

  /** Feed console output; resolves once the emulator has applied it. A sequence cut in two is joined. */
  write(data: string): Promise<void> {
    if (this.disposed || data === '') return Promise.resolve();
    return new Promise((resolve) => this.terminal.write(data, resolve));
  }

  /** Every row of the screen, trailing blanks removed. */
  rows(): string[] {
    if (this.disposed) return [...this.disposed];
    const buffer = this.terminal.buffer.active;
    const rows: string[] = [];
    for (let row = 0; row < this.terminal.rows; row++) {
      // Blanks written as spaces are not trimmed by translateToString.
      rows.push((buffer.getLine(buffer.viewportY + row)?.translateToString(true) ?? '').trimEnd());
    }
    return rows;
  }

  /** The screen for a message: its rows without the blank ones above and below (empty for a blank screen). */
  lines(): string[] {
    const rows = this.rows();
    const first = rows.findIndex((row) => row.trim() !== '');
    if (first < 0) return [];
    let last = rows.length - 1;
    while (rows[last].trim() === '') last--;
    return rows.slice(first, last + 1);
  }

  /** What stall detection compares: see screenFingerprint. */
  fingerprint(): string {
    return screenFingerprint(this.rows());
  }

  /** Keep the last screen as text and let the emulator go. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = this.rows();
    this.terminal.dispose();
  }
}

/**
 * The screen as stall detection compares it. Every row counts character for
 * character except the first and the last, where screen managers draw their
 * status line (debian-installer's GNU screen puts its hardstatus on the first
 * row: `[ (1*installer) 2 shell 3 shell 4- log ][ Dec 01 9:25 ]`; tmux, under
 * anaconda, on the last). There a run of digits counts as one digit and a run
 * of blanks as one blank, so that a clock ticking (9:59 → 10:00, with the
 * padding moving) is no change, while a new window name or message is. An
 * in-place counter on the top or bottom row of a full screen is the one change
 * this misses; a progress bar or new text anywhere is seen, and so is a
 * scrolling console, whose every row moves.
 */
export function screenFingerprint(rows: readonly string[]): string {
  const fold = (row: string): string => row.replace(/[0-9]+/g, '0').replace(/\s+/g, ' ');
  return rows.map((row, index) => (index === 0 || index === rows.length - 1 ? fold(row) : row)).join('\n');
}

/** A newt/whiptail dialog's title sits in its top border: `┌──┤ [!!] Download installer components ├──┐`. */
const DIALOG_TITLE = /[┌╔][─═]*┤\s*(\S.*?\S|\S)\s*├/;

/** The title of the (first) dialog on the screen, if one is drawn. */
export function screenTitle(lines: readonly string[]): string | undefined {
  for (const line of lines) {
    const title = DIALOG_TITLE.exec(line);
    if (title) return title[1];
  }
  return undefined;
}

/** The screen's last line of text that is not a status line (`[ … ]`). */
export function lastTextLine(lines: readonly string[]): string | undefined {
  const text = lines.filter((line) => line.trim() !== '' && !/^\s*\[.*\]\s*$/.test(line));
  return text.length ? text[text.length - 1].trim() : undefined;
}
