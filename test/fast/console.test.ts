import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cloudInitPattern, consoleMatches, noCloudSeed } from '../../src/pipeline/boot-test.js';
import { cleanConsoleText, ConsoleFollower } from '../../src/vm/console.js';
import { rotateLikeVirtlogd } from '../support/virtlogd.js';

const work = mkdtempSync(join(tmpdir(), 'console-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Numbered console lines, the way a guest prints them. */
function numbered(from: number, count: number): string {
  return Array.from({ length: count }, (_, i) => `line ${from + i}\r\n`).join('');
}

describe('the console follower', () => {
  test('hands out complete lines as they are appended, cleaned of escape sequences, even when a read cuts one in two', async () => {
    const log = join(work, 'cut.log');
    const lines: string[] = [];
    const follower = new ConsoleFollower(log, (line) => lines.push(line));
    await follower.poll();
    assert.equal(follower.text, '', 'a console log that does not exist yet is empty');
    appendFileSync(log, 'Loading \x1b[1');
    await follower.poll();
    assert.deepEqual(lines, []);
    appendFileSync(log, ';32mlinux\x1b[0m ...\r\nStarting ');
    await follower.poll();
    assert.deepEqual(lines, ['Loading linux ...']);
    appendFileSync(log, Buffer.from([0x69, 0x6e, 0x73, 0x74, 0x61, 0x6c, 0x6c, 0x65, 0x72, 0x20, 0xe2, 0x80]));
    await follower.poll();
    appendFileSync(log, Buffer.from([0x94, 0x0a]));
    await follower.poll();
    assert.deepEqual(
      lines,
      ['Loading linux ...', 'Starting installer —'],
      'a UTF-8 character cut by a read arrives whole',
    );
  });

  test('keeps the unfinished last line in its text (a login prompt) and counts it as a line when stopped', async () => {
    const log = join(work, 'prompt.log');
    const lines: string[] = [];
    const follower = new ConsoleFollower(log, (line) => lines.push(line));
    appendFileSync(log, 'Debian GNU/Linux 12 debian ttyS0\r\n\r\ndebian login: ');
    await follower.poll();
    assert.match(follower.text, /\bdebian login: $/m);
    assert.deepEqual(follower.lastLines(), ['Debian GNU/Linux 12 debian ttyS0', 'debian login:']);
    assert.equal(follower.latest(), 'debian login:');
    await follower.stop();
    assert.deepEqual(lines, ['Debian GNU/Linux 12 debian ttyS0', 'debian login:']);
  });

  test("follows the log through virtlogd's rotations: every line read exactly once and in order, the rotated file read to its end first", async () => {
    const log = join(work, 'rotated.log');
    const lines: string[] = [];
    const follower = new ConsoleFollower(log, (line) => lines.push(line));
    let next = 0;
    const write = (count: number): void => {
      appendFileSync(log, numbered(next, count));
      next += count;
    };
    write(5);
    await follower.poll();
    // Written after the last read and then rotated: the rest of `.0` comes before the new log.
    write(3);
    rotateLikeVirtlogd(log);
    write(2);
    await follower.poll();
    // A line cut in two by the rotation (virtlogd cuts where max_size falls when no newline is near).
    appendFileSync(log, `line ${next}`.slice(0, 3));
    rotateLikeVirtlogd(log);
    appendFileSync(log, `line ${next}\r\n`.slice(3));
    next += 1;
    await follower.poll();
    // Two, three and four rotations between two reads: the file being read ends as `.1`, `.2`, or removed.
    for (const rotations of [2, 3, 4]) {
      write(2);
      for (let n = 0; n < rotations; n++) {
        rotateLikeVirtlogd(log);
        write(1);
      }
      await follower.poll();
    }
    // Between virtlogd's renames and its new log, there is no log for a moment.
    write(1);
    rotateLikeVirtlogd(log, { newLog: false });
    await follower.poll();
    writeFileSync(log, numbered(next, 1));
    next += 1;
    await follower.stop();
    assert.deepEqual(
      lines,
      Array.from({ length: next }, (_, i) => `line ${i}`),
    );
  });

  test('a log rotated before its first read is read from its oldest file', async () => {
    const log = join(work, 'early.log');
    writeFileSync(log, numbered(0, 2));
    rotateLikeVirtlogd(log);
    appendFileSync(log, numbered(2, 2));
    rotateLikeVirtlogd(log);
    appendFileSync(log, numbered(4, 1));
    const lines: string[] = [];
    const follower = new ConsoleFollower(log, (line) => lines.push(line));
    await follower.stop();
    assert.deepEqual(lines, ['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
  });

  test('a log cut short in place (copytruncate) is read again from its start', async () => {
    const log = join(work, 'truncated.log');
    const lines: string[] = [];
    const follower = new ConsoleFollower(log, (line) => lines.push(line));
    writeFileSync(log, numbered(0, 3));
    await follower.poll();
    writeFileSync(log, numbered(3, 1));
    await follower.stop();
    assert.deepEqual(lines, ['line 0', 'line 1', 'line 2', 'line 3']);
  });

  test('keeps a whole copy of the console, across rotations, byte for byte in the file it is given', async () => {
    const log = join(work, 'copied.log');
    const copy = join(work, 'copied.console.log');
    writeFileSync(copy, '');
    const follower = new ConsoleFollower(log, undefined, copy);
    const written: Buffer[] = [];
    const write = (text: string): void => {
      appendFileSync(log, text);
      written.push(Buffer.from(text));
    };
    for (let part = 0; part < 6; part++) {
      write(`\x1b[1mpart ${part}\x1b[0m \u2014 `);
      await follower.poll();
      write(numbered(part * 10, 10));
      rotateLikeVirtlogd(log);
    }
    write('login: ');
    await follower.stop();
    assert.deepEqual(readFileSync(copy), Buffer.concat(written));
  });

  test('a copy that cannot be written (a link in its place) stops, with the reason kept, and the console is followed on', async () => {
    const log = join(work, 'uncopied.log');
    const copy = join(work, 'uncopied.console.log');
    symlinkSync(join(work, 'elsewhere'), copy);
    const lines: string[] = [];
    const follower = new ConsoleFollower(log, (line) => lines.push(line), copy);
    appendFileSync(log, numbered(0, 2));
    await follower.poll();
    appendFileSync(log, numbered(2, 1));
    await follower.stop();
    assert.deepEqual(lines, ['line 0', 'line 1', 'line 2']);
    assert.equal((follower.copyError as NodeJS.ErrnoException | undefined)?.code, 'ELOOP');
    assert.ok(!existsSync(join(work, 'elsewhere')), 'nothing was written through the link');
  });

  test('quotes only the last lines it was asked for', async () => {
    const log = join(work, 'many.log');
    const follower = new ConsoleFollower(log);
    appendFileSync(log, Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join(''));
    await follower.poll();
    assert.deepEqual(follower.lastLines(3), ['line 47', 'line 48', 'line 49']);
    assert.equal(follower.lastLines().length, 20);
  });
});

describe('console text', () => {
  test('escape sequences, character-set switches and control characters go, line breaks stay', () => {
    assert.equal(cleanConsoleText('\x1b[2J\x1b[H\x1b(0lqqk\x1b(B\r\nok\x07\r\n'), '┌──┐\nok\n');
  });

  test("newt's line drawing reads as box characters, its colours inside a drawing kept out", () => {
    assert.equal(
      cleanConsoleText(
        '\x1b(0\x1b[30m\x1b[47mlqqu\x1b[0m\x1b(B\x1b[31m Detecting network hardware \x1b(0tqqk\x1b(B\r\n\x1b(0x\x1b(B lqk\r\n',
      ),
      '┌──┤ Detecting network hardware ├──┐\n│ lqk\n',
    );
  });
});

describe("the boot test's console matching", () => {
  const login = /\blogin: *$/m;

  test('a login prompt matches at the end of the console, and when messages land right after it', () => {
    assert.ok(consoleMatches(login, 'Debian GNU/Linux 12 debian ttyS0\n\ndebian login: '));
    const busy = cleanConsoleText(
      '\r\nDebian GNU/Linux 12 debian ttyS0\r\n\r\ndebian login: [   57.962647] cloud-init[315]: Generation complete.\r\n[\x1b[0;32m  OK  \x1b[0m] Started x\r\n',
    );
    assert.ok(consoleMatches(login, busy));
    assert.ok(!consoleMatches(login, 'Last login: never, from nowhere'));
    assert.ok(!consoleMatches(login, 'login: is what we wait for'));
  });

  test('the NoCloud seed prints a marker that only its own token matches, on the serial console it is given', () => {
    const seed = noCloudSeed('0123456789ab', 'ttyAMA0');
    assert.match(seed['user-data'], /> \/dev\/ttyAMA0 \|\| true'\]$/m);
    assert.doesNotMatch(seed['user-data'], /ttyS0/);
    assert.match(seed['meta-data'], /^instance-id: image-factory-boot-test-0123456789ab$/m);
    assert.match(seed['user-data'], /^#cloud-config\n/);
    assert.match(
      seed['user-data'],
      /^final_message: "image-factory-boot-test 0123456789ab: cloud-init finished after \$UPTIME seconds"$/m,
    );
    const pattern = cloudInitPattern('0123456789ab');
    assert.ok(
      pattern.test(
        '[   73.745025] cloud-init[350]: image-factory-boot-test 0123456789ab: cloud-init finished after 73.71 seconds',
      ),
    );
    assert.ok(pattern.test('image-factory-boot-test 0123456789ab: cloud-init runcmd ran'));
    assert.ok(!pattern.test('image-factory-boot-test ffffffffffff: cloud-init finished after 1.00 seconds'));
  });
});
