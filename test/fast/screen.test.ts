import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConsoleFollower } from '../../src/vm/console.js';
import { lastTextLine, screenFingerprint, screenTitle, TerminalScreen } from '../../src/vm/screen.js';
import { quoteScreen, VmStepError } from '../../src/vm/virt-install.js';
import { renderSummary } from '../../src/action/summary.js';

const work = mkdtempSync(join(tmpdir(), 'screen-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

const ESC = '\x1b';
const at = (row: number, column: number): string => `${ESC}[${row};${column}H`;
/** DEC special graphics on, text, off: how newt draws its boxes on a serial terminal. */
const graphics = (text: string): string => `${ESC}(0${text}${ESC}(B`;

/** debian-installer's error dialog as newt draws it: cleared screen, a box by cursor addressing, a status line. */
function dialog(clock: string): string {
  return [
    `${ESC}[0m${ESC}[H${ESC}[2J`,
    at(5, 3),
    graphics('lqqqqqqqqu'),
    ' [!!] Download installer components ',
    graphics('tqqqqqqqqk'),
    at(6, 3),
    graphics('x'),
    at(6, 5),
    'The installer failed to download a file from the mirror.',
    at(6, 66),
    graphics('x'),
    at(7, 3),
    graphics(`m${'q'.repeat(62)}j`),
    statusLine(clock),
    at(6, 20),
  ].join('');
}

function statusLine(clock: string): string {
  return `${at(24, 1)}${ESC}[2K[ (1*installer) 2 shell 3 shell 4- log ][ Dec 01 ${clock} ]`;
}

describe('the terminal screen', () => {
  test('renders a newt dialog drawn with cursor addressing and DEC line drawing as box characters and text', async () => {
    const screen = new TerminalScreen();
    await screen.write(`[    1.234567] Linux version 6.1.0-40-amd64\r\n${dialog('9:25')}`);
    const lines = screen.lines();
    assert.deepEqual(lines.slice(0, 3), [
      '  ┌────────┤ [!!] Download installer components ├────────┐',
      '  │ The installer failed to download a file from the mirror.     │',
      `  └${'─'.repeat(62)}┘`,
    ]);
    assert.equal(lines[lines.length - 1], '[ (1*installer) 2 shell 3 shell 4- log ][ Dec 01 9:25 ]');
    assert.ok(!lines.join('\n').includes(ESC), 'no escape sequence is left');
    assert.ok(!lines.join('\n').includes('Linux version'), 'the cleared screen is gone');
    assert.equal(screenTitle(lines), '[!!] Download installer components');
  });

  test('an escape sequence or UTF-8 character cut in two by the console reads arrives whole', async () => {
    const log = join(work, 'cut.log');
    const follower = new ConsoleFollower(log);
    const bytes = Buffer.from(`${dialog('9:25')}${at(10, 1)}Résumé`);
    let offset = 0;
    for (const size of [4, 7, 1, 30, 3, 200, 2, 1]) {
      appendFileSync(log, bytes.subarray(offset, offset + size));
      offset += size;
      await follower.poll();
    }
    appendFileSync(log, bytes.subarray(offset));
    await follower.stop();
    const lines = follower.screen.lines();
    assert.equal(screenTitle(lines), '[!!] Download installer components');
    assert.ok(lines.includes('Résumé'), lines.join('\n'));
    assert.equal(lastTextLine(lines), 'Résumé');
  });

  test("bytes the terminal's parser cannot take (a guest's '…' inside an escape sequence) print nothing of the parser's to the build's output", async () => {
    const printed: unknown[][] = [];
    const saved = { error: console.error, warn: console.warn, log: console.log, info: console.info };
    for (const name of ['error', 'warn', 'log', 'info'] as const)
      console[name] = (...args: unknown[]) => printed.push(args);
    try {
      const screen = new TerminalScreen();
      // What a provisioning boot's console showed: U+2026 inside CSI parameters and after an ESC.
      await screen.write('booting\r\n\x1b[1;\u2026m\x1b\u2026 still booting\r\n');
      assert.ok(screen.lines().some((line) => line.includes('booting')));
    } finally {
      Object.assign(console, saved);
    }
    assert.deepEqual(printed, []);
  });

  test('a status line whose clock ticks is no change; a new dialog, a new status message or a progress bar is', async () => {
    const screen = new TerminalScreen();
    await screen.write(dialog('9:59'));
    const waiting = screen.fingerprint();
    await screen.write(statusLine('10:00'));
    assert.equal(screen.fingerprint(), waiting, 'the clock went from 9:59 to 10:00');
    await screen.write(`${statusLine('10:01')}${at(6, 20)}`);
    assert.equal(screen.fingerprint(), waiting, 'the cursor moved back into the dialog');
    await screen.write(`${at(24, 1)}${ESC}[2K[ (1*installer) 2 shell 3 shell 4- log 5 partman ][ Dec 01 10:01 ]`);
    assert.notEqual(screen.fingerprint(), waiting, 'a new window in the status line');
    const before = screen.fingerprint();
    await screen.write(`${at(12, 5)}${graphics('aaaa')}`);
    assert.notEqual(screen.fingerprint(), before, 'a progress bar grew');
    // debian-installer's GNU screen draws its status line on the first row.
    const top = (clock: string): string[] => [`[ (1*installer)  2 shell ][ Dec 01 ${clock} ]`, 'Retrieving file 3', ''];
    assert.equal(screenFingerprint(top('9:59')), screenFingerprint(top('10:00')));
    // Digits on the rows between are compared as they are.
    assert.notEqual(
      screenFingerprint(['[ 9:25 ]', 'Retrieving file 3 of 112', '[ 9:25 ]']),
      screenFingerprint(['[ 9:25 ]', 'Retrieving file 4 of 112', '[ 9:25 ]']),
    );
  });

  test('the progress line shows a dialog title, or else the last line of text that is not a status line', () => {
    assert.equal(screenTitle(['plain text | with bars |']), undefined);
    assert.equal(
      lastTextLine(['Loading modules', 'Starting installer', '', '[ 1 installer ][ 9:25 ]']),
      'Starting installer',
    );
    assert.equal(lastTextLine([]), undefined);
  });

  test('a VM step error quotes the screen under a heading, blank rows kept as bars', () => {
    const error = new VmStepError('stopped', ['┌─┤ Title ├─┐', '', '└──────────┘']);
    assert.equal(
      error.message,
      `stopped\nThe console's last screen:\n${quoteScreen(['┌─┤ Title ├─┐', '', '└──────────┘'])}`,
    );
    assert.match(error.message, /\n {2}\|\n/);
    assert.equal(new VmStepError('stopped', []).message, 'stopped');
  });

  test("the action's job summary shows the rendered screen of a failed install", () => {
    const message = `The install step (Run the unattended installer) failed: ${new VmStepError('the installer seems to be waiting for input', ['┌──┤ [!!] Download installer components ├──┐']).message}`;
    const html = renderSummary({ image: 'Debian-12-server', steps: [], failure: { step: 'install', message } });
    assert.match(
      html,
      /<pre>[^<]*The console's last screen:\n {2}\| ┌──┤ \[!!\] Download installer components ├──┐<\/pre>/,
    );
  });
});
