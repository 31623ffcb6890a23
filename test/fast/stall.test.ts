import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ImageSpec } from '../../src/config/image-spec.js';
import { installSystem, vmConsoleLog } from '../../src/pipeline/install.js';
import { StallDetector } from '../../src/vm/stall.js';
import { VmStepError } from '../../src/vm/virt-install.js';
import { testContext, testSpec } from '../support/build-context.js';
import { FakeClock } from '../support/fake-clock.js';
import { rotateLikeVirtlogd } from '../support/virtlogd.js';

/**
 * The install step's watch on the recording host: virt-install "runs" until
 * the domain is destroyed or powers off (installsRunUntilStopped), the
 * console is a real file the test writes, the disk's blocks come from the
 * plan. The watch runs on a fake clock that the test moves a second at a
 * time, so a stall of seconds takes milliseconds and a busy machine changes
 * nothing: between two of the watch's reads happens only what the test writes.
 */

const work = mkdtempSync(join(tmpdir(), 'stall-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

const ESC = '\x1b';
const DISK = '/images/.img.partial-XXXXXX/img.raw';
const installer = { dir: '/cache/img', files: { linux: 'linux', initrd: 'initrd.gz' }, downloaded: false };

/** The install step's target; each test has a staging folder of its own, where virtlogd writes the VM's console. */
function target(name: string): { domain: string; diskPath: string; consoleLog: string; staging: string } {
  const staging = mkdtempSync(join(work, `${name}-`));
  return { domain: 'img-XXXXXX', diskPath: DISK, consoleLog: join(work, `${name}.console.log`), staging };
}

const QUESTION =
  `${ESC}[H${ESC}[2J${ESC}[4;3H${ESC}(0lqqu${ESC}(B [?] Keyboard ${ESC}(0tqqk${ESC}(B` +
  `${ESC}[5;3H${ESC}(0x${ESC}(B Keymap to use: ${ESC}[6;3H${ESC}(0mqqqqqqqqqqqqqqqqqqj${ESC}(B`;

/** The watch reads the console once a second. */
const TICK_MS = 1_000;

/**
 * A question in a newt-style box; then the returned function redraws a
 * status-line clock, a new time each call (`onWrite` sees each write).
 */
function askAndTick(consoleLog: string, onWrite?: (text: string) => void): () => void {
  const write = (text: string): void => {
    appendFileSync(consoleLog, text);
    onWrite?.(text);
  };
  if (!onWrite) writeFileSync(consoleLog, '');
  write(QUESTION);
  let seconds = 0;
  return () => {
    seconds += 1;
    write(`${ESC}[24;1H${ESC}[2K[ (1*installer) 2 shell ][ 10:${String(seconds % 60).padStart(2, '0')} ]`);
  };
}

/** Whether `running` has settled, as a function to ask. */
function settledFlag(running: Promise<unknown>): () => boolean {
  let settled = false;
  running.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

/**
 * One second of the watch's clock, after whatever the event loop has to do
 * first (the step's file work); before the watch starts, only that work.
 */
async function nextSecond(clock: FakeClock): Promise<void> {
  if (!clock.ticking) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return;
  }
  await new Promise((resolve) => setImmediate(resolve));
  await clock.advance(TICK_MS);
}

/** Resolves once `found` returns something, moving the clock on meanwhile; rejects if `running` settles first. */
async function once<T>(clock: FakeClock, found: () => T | undefined, running: Promise<unknown>): Promise<T> {
  const settled = settledFlag(running);
  for (;;) {
    const value = found();
    if (value !== undefined) return value;
    if (settled()) throw new Error(`the install ended before the awaited event`);
    await nextSecond(clock);
  }
}

/**
 * Moves the clock a second at a time until `install` settles, calling `each`
 * after every second with the time since the start; returns that time. Past
 * `limitMs` of the fake clock it fails: a watch that never stops the VM.
 */
async function untilSettled(
  clock: FakeClock,
  install: Promise<unknown>,
  each: (elapsedMs: number) => void = () => undefined,
  limitMs = 120_000,
): Promise<number> {
  const settled = settledFlag(install);
  while (!settled() && !clock.ticking) await nextSecond(clock);
  const start = clock.now();
  while (!settled()) {
    if (clock.now() - start > limitMs) throw new Error(`the install still runs after ${limitMs} ms of its clock`);
    await nextSecond(clock);
    each(clock.now() - start);
  }
  return clock.now() - start;
}

function spec(overrides: Partial<ImageSpec> = {}): ImageSpec {
  return testSpec({ outputDir: '/images', stallTimeoutMs: 2_000, installTimeoutMs: 60_000, ...overrides });
}

describe('the install watch on the recording host', { concurrency: true }, () => {
  test('an installer that shows a question and then only ticks its clock is stopped at stall-timeout, showing the question; with VNC, a screenshot is kept', async () => {
    const vm = target('ask');
    const tickClock = askAndTick(vmConsoleLog(vm.staging));
    const ppm = Buffer.concat([Buffer.from('P6\n1 1\n255\n'), Buffer.from([1, 2, 3])]);
    const clock = new FakeClock();
    const { ctx, recording, reporter } = testContext(spec({ vnc: { listen: '127.0.0.1', port: 5901 } }), {
      recording: { installsRunUntilStopped: true, readFile: (path) => (path.endsWith('.ppm') ? ppm : undefined) },
      uid: 0,
      clock,
    });
    const install = installSystem(ctx, vm, installer);
    const elapsed = await untilSettled(clock, install, tickClock);
    await assert.rejects(install, (error: unknown) => {
      assert.ok(error instanceof VmStepError);
      assert.match(
        error.message,
        /^the installer seems to be waiting for input: its screen and its disk did not change for 2\.0 s \(stall-timeout\), so the VM was stopped\. A screenshot of its display is in \S+\/ask\.screen\.png\nThe console's last screen:\n {2}\| {3}┌──┤ \[\?\] Keyboard ├──┐\n {2}\| {3}│ Keymap to use:\n/,
      );
      assert.ok(!error.message.includes(ESC), 'no escape sequences in the message');
      return true;
    });
    // Not before the limit, and soon after it: a tick or two of the watch.
    assert.ok(elapsed >= 2_000 && elapsed <= 5_000, `stopped after ${elapsed} ms`);
    const commands = recording?.commands() ?? [];
    const ppmPath = join(vm.staging, 'screen.ppm');
    assert.deepEqual(commands.slice(-2), [
      `virsh -c qemu:///system screenshot --domain img-XXXXXX --file ${ppmPath}`,
      'virsh -c qemu:///system destroy img-XXXXXX',
    ]);
    const png = join(work, 'ask.screen.png');
    // The console log the build creates for virtlogd, then the screenshot.
    assert.deepEqual(recording?.fileOperations('writeFile'), [[vm.consoleLog], [png]]);
    assert.deepEqual([...((recording?.written.get(png) as Buffer) ?? []).subarray(1, 4)], [0x50, 0x4e, 0x47]);
    const removed = recording?.fileOperations('remove').map(([path]) => path);
    assert.deepEqual(removed, [vm.consoleLog, png, png, ppmPath], 'an old screenshot goes first; the PPM at the end');
    assert.match(
      reporter.text(),
      /warning: the installer's screen and disk have not changed for 2\.0 s \(stall-timeout\)/,
    );
    assert.match(reporter.text(), /progress install: installer running for [\d.]+ s; screen: \[\?\] Keyboard/);
  });

  test('an installer whose console virtlogd rotates is followed to the question shown after the rotations: every line read once, the question quoted, the published console log whole', async () => {
    const vm = target('rotated');
    const clock = new FakeClock();
    const { ctx, recording, reporter } = testContext(spec({ installerLogs: true }), {
      recording: { installsRunUntilStopped: true },
      uid: 0,
      clock,
    });
    const install = installSystem(ctx, vm, installer);
    install.catch(() => undefined);
    // virtlogd writes where virt-install's --console option says.
    const log = await once(
      clock,
      () =>
        /log\.file=(\S+?)(?:,| |$)/.exec(
          recording?.commands().find((c) => c.startsWith('virt-install --connect')) ?? '',
        )?.[1],
      install,
    );
    const written: string[] = [];
    const write = (text: string): void => {
      appendFileSync(log, text);
      written.push(text);
    };
    const progress = (from: number, count: number): void =>
      write(Array.from({ length: count }, (_, i) => `Unpacking package ${from + i}...\r\n`).join(''));
    progress(0, 20);
    await once(
      clock,
      () => (reporter.text().includes('output: console: Unpacking package 19...') ? true : undefined),
      install,
    );
    // Then, between two reads of the watch: more lines, two rotations, the question.
    progress(20, 20);
    rotateLikeVirtlogd(log);
    progress(40, 20);
    rotateLikeVirtlogd(log);
    progress(60, 5);
    const tickClock = askAndTick(log, (text) => written.push(text));
    await untilSettled(clock, install, tickClock);
    await assert.rejects(install, (error: unknown) => {
      assert.ok(error instanceof VmStepError);
      assert.match(
        error.message,
        /^the installer seems to be waiting for input: .*\(stall-timeout\).*\nThe console's last screen:\n {2}\| {3}┌──┤ \[\?\] Keyboard ├──┐\n {2}\| {3}│ Keymap to use:\n/,
      );
      return true;
    });
    const lines = reporter.lines.flatMap(
      (line) => /^output: console: (Unpacking package \d+)\.\.\.$/.exec(line)?.[1] ?? [],
    );
    assert.deepEqual(
      lines,
      Array.from({ length: 65 }, (_, i) => `Unpacking package ${i}`),
    );
    // Every byte the VM wrote until it was stopped, in order (the clock ticked on after that).
    const published = readFileSync(vm.consoleLog, 'utf8');
    const all = written.join('');
    assert.ok(published.includes(QUESTION), 'the question is in the published console log');
    assert.equal(all.slice(0, published.length), published);
  });

  // untilSettled's limit guards against a hang: a watch that fails every tick never stops the VM.
  test('a published console log that cannot be written does not blind the watch: the installer is still stopped at stall-timeout, and a warning says the log is incomplete', async () => {
    const vm = target('unwritable');
    symlinkSync(join(work, 'elsewhere'), vm.consoleLog);
    const tickClock = askAndTick(vmConsoleLog(vm.staging));
    const clock = new FakeClock();
    const { ctx, reporter } = testContext(spec(), { recording: { installsRunUntilStopped: true }, uid: 0, clock });
    const install = installSystem(ctx, vm, installer);
    await untilSettled(clock, install, tickClock);
    await assert.rejects(
      install,
      /^VmStepError: the installer seems to be waiting for input: .*\nThe console's last screen:\n {2}\| {3}┌──┤ \[\?\] Keyboard ├──┐/,
    );
    assert.ok(
      reporter.lines.includes(
        `warning: ${vm.consoleLog} lacks the console from where writing it failed: ELOOP: too many symbolic links encountered, open '${vm.consoleLog}'`,
      ),
      reporter.text(),
    );
  });

  test("the install's phases on the watch's clock: boot to the first console byte, running to the last, power-off", async () => {
    const vm = target('phases');
    const consoleLog = vmConsoleLog(vm.staging);
    writeFileSync(consoleLog, '');
    const clock = new FakeClock();
    const { ctx, recording } = testContext(spec({ stallTimeoutMs: 0 }), {
      recording: { installsRunUntilStopped: true },
      uid: 0,
      clock,
    });
    const install = installSystem(ctx, vm, installer);
    // Nothing for 4 s (seen at the 5th tick), the last line after 11 s (seen at the 12th), power-off at 15 s.
    await untilSettled(clock, install, (elapsed) => {
      if (elapsed === 4_000) appendFileSync(consoleLog, 'Linux version 6.1.0\r\n');
      if (elapsed === 11_000) appendFileSync(consoleLog, 'reboot: Power down\r\n');
      if (elapsed === 15_000) recording?.powerOff(vm.domain);
    });
    assert.deepEqual(await install, { bootSeconds: 5, runningSeconds: 7, powerOffSeconds: 3 });
  });

  test('an installer whose console stays empty has no console phases', async () => {
    const vm = target('silent');
    writeFileSync(vmConsoleLog(vm.staging), '');
    const clock = new FakeClock();
    const { ctx, recording } = testContext(spec({ stallTimeoutMs: 0 }), {
      recording: { installsRunUntilStopped: true },
      uid: 0,
      clock,
    });
    const install = installSystem(ctx, vm, installer);
    await untilSettled(clock, install, (elapsed) => {
      if (elapsed === 3_000) recording?.powerOff(vm.domain);
    });
    assert.deepEqual(await install, { bootSeconds: null, runningSeconds: null, powerOffSeconds: null });
  });

  test('an installer that prints nothing but writes its disk is not stopped', async () => {
    const vm = target('busy');
    writeFileSync(vmConsoleLog(vm.staging), 'Unpacking the base system...\r\n');
    let blocks = 0;
    const clock = new FakeClock();
    const { ctx, recording } = testContext(spec(), {
      recording: {
        installsRunUntilStopped: true,
        stat: () => ({ size: 1 << 30, blocks: (blocks += 2048), uid: 0, gid: 0 }),
      },
      uid: 0,
      clock,
    });
    const install = installSystem(ctx, vm, installer);
    // Five times stall-timeout of writing, then the installer powers off.
    await untilSettled(clock, install, (elapsed) => {
      if (elapsed === 10_000) recording?.powerOff(vm.domain);
    });
    await install;
    assert.ok(blocks >= 5 * 2048, `the disk was looked at ${blocks / 2048} times`);
    const commands = recording?.commands() ?? [];
    assert.ok(!commands.some((command) => / destroy /.test(command)), commands.join('\n'));
    assert.deepEqual(recording?.leftovers(), []);
  });

  test('without a VNC display no screenshot is taken; stall-timeout 0 leaves a waiting installer to install-timeout', async () => {
    const vm = target('off');
    const tickClock = askAndTick(vmConsoleLog(vm.staging));
    const clock = new FakeClock();
    const { ctx, recording } = testContext(spec({ stallTimeoutMs: 0, installTimeoutMs: 3_000 }), {
      recording: { installsRunUntilStopped: true },
      uid: 0,
      clock,
    });
    const install = installSystem(ctx, vm, installer);
    await untilSettled(clock, install, tickClock);
    await assert.rejects(
      install,
      /^VmStepError: the installer did not finish within 3\.0 s \(install-timeout\); the VM was stopped\nThe console's last screen:\n {2}\| {3}┌──┤ \[\?\] Keyboard ├──┐/,
    );
    const commands = recording?.commands() ?? [];
    assert.ok(!commands.some((command) => / screenshot /.test(command)), commands.join('\n'));
    assert.equal(commands[commands.length - 1], 'virsh -c qemu:///system destroy img-XXXXXX');
  });
});

describe('stall detection', () => {
  test('stalled once neither the screen nor the disk changed for the limit; either change starts the wait anew', () => {
    const stall = new StallDetector(10_000, 0);
    stall.seeScreen('boot', 0);
    stall.seeDisk(100, 0);
    assert.equal(stall.stalled(9_999), false);
    stall.seeScreen('dialog', 5_000);
    stall.seeScreen('dialog', 14_000);
    assert.equal(stall.stalled(14_999), false);
    assert.equal(stall.stalled(15_000), true);
    stall.seeDisk(100, 16_000);
    assert.equal(stall.stalled(16_000), true, 'the disk as it was is no activity');
    stall.seeDisk(2148, 17_000);
    assert.equal(stall.quietFor(20_000), 3_000);
    assert.equal(stall.stalled(26_999), false);
    assert.equal(stall.stalled(27_000), true);
  });

  test('a limit of 0 never stalls', () => {
    const stall = new StallDetector(0, 0);
    stall.seeScreen('dialog', 0);
    assert.equal(stall.stalled(365 * 24 * 3600_000), false);
  });
});
