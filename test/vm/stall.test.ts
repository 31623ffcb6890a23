import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeWorkDir, writeFixtureConfig } from '../support/fixture.js';
import { leftovers } from '../support/leftovers.js';
import { builtStem, runCli } from '../support/run-cli.js';

const workDirs: string[] = [];
function workDir(name: string): string {
  const dir = makeWorkDir(`stall-${name}`);
  workDirs.push(dir);
  return dir;
}

after(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

describe('stall detection on the fixture installer', () => {
  test('an installer that stops at a question and only ticks its clock is stopped at stall-timeout, the question shown as text', async () => {
    const dir = workDir('ask');
    const { config, image } = writeFixtureConfig(dir, {
      directives: { ask: 'Which_keyboard_layout_does_this_machine_have?' },
      keys: { 'stall-timeout': '20s' },
    });
    const started = Date.now();
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /install step failed: the installer seems to be waiting for input: its screen and its disk did not change for 20\.0 s \(stall-timeout\), so the VM was stopped\n(?:.* image-factory \[\d+\] ERROR: )?The console's last screen:\n/,
    );
    const screen = run.stderr.slice(run.stderr.indexOf("The console's last screen:"));
    assert.match(screen, /\| +┌─+┤ \[\?\] Configure the fixture ├─+┐\n/);
    assert.match(screen, /\| +│ Which keyboard layout does this machine have\? +│\n/);
    assert.match(screen, /\| +└─+┘\n/);
    assert.match(screen, /\| \[ \(1\*installer\) 2 shell 3 shell 4- log \]\[ \w+ \d+ \d\d:\d\d:\d\d \]/);
    assert.ok(!screen.includes('\x1b') && !/\(0[lqkx]/.test(screen), 'no escape sequences or raw line drawing');
    // The console log keeps the raw bytes: the clock went on ticking until the VM was stopped.
    const stem = builtStem(run.stderr, image);
    const raw = readFileSync(join(dir, `${stem}.console.log`), 'utf8');
    assert.ok(
      (raw.match(/\[ \(1\*installer\)/g) ?? []).length >= 5,
      'the clock was redrawn while the installer waited',
    );
    // Stopped by the stall, not at install-timeout (5m): the whole build, boot included, stays below it.
    assert.ok(seconds < 300, `stopped after ${seconds} s`);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith(stem) && /\.(qcow2|raw|sha256sum)$/.test(f)),
      [],
    );
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('an installer that writes its disk for longer than stall-timeout without printing is not stopped', async () => {
    const dir = workDir('busy');
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'busy-silent': 35, 'data-mb': 8 },
      keys: { 'stall-timeout': '20s' },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /stall-timeout/);
    const stem = builtStem(run.stderr, image);
    const raw = readFileSync(join(dir, `${stem}.console.log`), 'utf8');
    assert.match(
      raw,
      /busy-silent=35: writing to \/dev\/vda for 35 s without a word\r?\n(?:(?!fixture-installer).*\r?\n)*fixture-installer: busy-silent: done/,
    );
    assert.match(raw, /fixture-installer: done/);
    assert.ok(existsSync(join(dir, `${stem}.qcow2`)));
    assert.deepEqual(leftovers(dir, stem), []);
  });
});
