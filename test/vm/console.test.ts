import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeWorkDir, writeFixtureConfig } from '../support/fixture.js';
import { leftovers } from '../support/leftovers.js';
import { builtStem, runCli } from '../support/run-cli.js';

const workDirs: string[] = [];
function workDir(name: string): string {
  const dir = makeWorkDir(`console-${name}`);
  workDirs.push(dir);
  return dir;
}

after(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * 2.25 MiB of console lines (2.27 MiB with the terminal's CRs): past
 * virtlogd's max_size (2 MiB), so it rotates the console log once.
 */
const FLOOD_KB = 2304;
const FLOOD_LINES = FLOOD_KB * 8;

/** The numbers of the fixture's flood lines in `text`, in the order they appear. */
function floodNumbers(text: string, prefix = ''): number[] {
  const pattern = new RegExp(`^${prefix}fixture-installer: flood (\\d{7}) \\.{94}\\r?$`, 'gm');
  return [...text.matchAll(pattern)].map((match) => Number(match[1]));
}

const everyFloodLine = Array.from({ length: FLOOD_LINES }, (_, i) => i);

/** virtlogd's rotated parts (`<stem>.console.log.0` …) and staging folders left in the output folder. */
function consoleParts(dir: string, stem: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith(`${stem}.console.log.`) || name.includes('.partial'));
}

describe("an installer's console longer than virtlogd's 2 MiB", () => {
  test('is followed to its end: the build sees every line once and in order, publishes the console log whole, and leaves no parts', async (t) => {
    const dir = workDir('flood');
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'flood-kb': FLOOD_KB, 'data-mb': 0 },
      keys: { 'installer-logs': 'yes' },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr.slice(-4000));
    const stem = builtStem(run.stderr, image);
    const flood = /install: installer running for|flood-kb=\d+: printing|flood: done|== install done after/;
    for (const line of run.stderr.split('\n').filter((l) => flood.test(l))) t.diagnostic(line.slice(0, 160));
    // What the build read, through the rotation: installer-logs prints each console line.
    assert.deepEqual(floodNumbers(run.stderr, '.*console: '), everyFloodLine);
    assert.match(run.stderr, /console: fixture-installer: flood: done\n(?:.*\n)*?.*console: fixture-installer: done\n/);
    // The published console log is whole: from the installer's first line, every line once, to its end.
    const log = readFileSync(join(dir, `${stem}.console.log`), 'utf8');
    t.diagnostic(`${stem}.console.log: ${log.length} bytes`);
    assert.ok(log.length > FLOOD_KB << 10, `${log.length} bytes`);
    assert.match(
      log.split('\n').find((line) => line.includes('fixture-installer:')) ?? '',
      /fixture-installer: starting/,
    );
    assert.deepEqual(floodNumbers(log), everyFloodLine);
    assert.match(log, /fixture-installer: flood: done\r?\n[\s\S]*fixture-installer: done\r?\n/);
    assert.ok(existsSync(join(dir, `${stem}.qcow2`)));
    assert.deepEqual(consoleParts(dir, stem), []);
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('that ends at a question: the stall quotes the question, the console log is kept whole and no parts are left', async () => {
    const dir = workDir('flood-ask');
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'flood-kb': FLOOD_KB, ask: 'Which_keyboard_layout_does_this_machine_have?' },
      keys: { 'stall-timeout': '20s' },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 1, run.stderr.slice(-4000));
    assert.match(run.stderr, /install step failed: the installer seems to be waiting for input: .*\(stall-timeout\)/);
    const screen = run.stderr.slice(run.stderr.indexOf("The console's last screen:"));
    assert.match(screen, /\| +│ Which keyboard layout does this machine have\? +│\n/);
    const stem = builtStem(run.stderr, image);
    const log = readFileSync(join(dir, `${stem}.console.log`), 'utf8');
    assert.match(
      log.split('\n').find((line) => line.includes('fixture-installer:')) ?? '',
      /fixture-installer: starting/,
    );
    assert.deepEqual(floodNumbers(log), everyFloodLine);
    assert.match(log, /Which keyboard layout does this machine have\?/);
    assert.deepEqual(consoleParts(dir, stem), []);
    assert.deepEqual(leftovers(dir, stem), []);
  });
});
