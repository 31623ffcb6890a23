// Run compiled test files with Node's test runner.
//
//   node scripts/run-tests.mjs              every test: test/fast in parallel, the tests that
//                                           change the host for everyone (/dev/kvm's mode) alone,
//                                           then the rest in two lanes (see below)
//   node scripts/run-tests.mjs fast         the tests of test/fast/ (no root, no libvirt), in parallel
//   node scripts/run-tests.mjs vm/boot-test files whose path contains this, one at a time
//
// The tiers, by what their tests start: test/fast (nothing: pure code, the
// recording host, local files), test/command (the built command and action as
// root, no VM), test/servers (rsync daemon, sshd, HTTP servers on 127.0.0.1),
// test/vm and test/action (libvirt and qemu: whole builds on the fixture installers).
//
// Lanes: a TCG guest keeps one core busy and most of a VM test is its guest,
// so on a machine with two cores or more the slow tiers run as TEST_LANES
// (default 2) runners side by side, each file in exactly one lane, each lane
// with a temporary folder of its own (TMPDIR), so that a test's look for
// leftovers sees its own lane only. Files go to lanes longest first, by the
// durations measured below; a file not listed counts as SHORT_FILE seconds.
// Each line of a lane's output starts with its number.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** Seconds each slow file took in CI (a full run, two lanes, 2 cores), to balance the lanes. */
const MEASURED = {
  'vm/boot-test': 1000,
  'vm/real-installer': 720,
  'vm/layouts': 720,
  'vm/build': 500,
  'action/installer-cache-v2': 340,
  'action/installer-cache.test': 250,
  'vm/arch': 130,
  'action/build': 130,
  'vm/stall': 80,
  'vm/upload': 60,
  'vm/untrusted-guest': 50,
  'action/cancel': 20,
};
const SHORT_FILE = 15;

/** Files that change the host for every test running beside them (they make /dev/kvm root-only for a while). */
const ALONE = ['vm/host-conditions', 'action/host-setup'];

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const testArgs = (concurrency, files) => [
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-reporter=spec',
  ...files,
];

function runInline(concurrency, files) {
  if (files.length === 0) return 0;
  return spawnSync(process.execPath, testArgs(concurrency, files), { stdio: 'inherit' }).status ?? 1;
}

const matches = (file, part) => file.startsWith(join('build/test', part, '/')) || file.includes(part);
const seconds = (file) => {
  const key = Object.keys(MEASURED).find((part) => file.includes(part));
  return key ? MEASURED[key] : SHORT_FILE;
};

/** Split files into `count` lanes, longest first, each to the lane with the least so far. */
function lanesOf(files, count) {
  const lanes = Array.from({ length: count }, () => ({ files: [], seconds: 0 }));
  for (const file of [...files].sort((a, b) => seconds(b) - seconds(a))) {
    const lane = lanes.reduce((least, next) => (next.seconds < least.seconds ? next : least));
    lane.files.push(file);
    lane.seconds += seconds(file);
  }
  return lanes.filter((lane) => lane.files.length > 0);
}

function runLane(number, files) {
  const dir = mkdtempSync(join(tmpdir(), `test-lane-${number}.`));
  // As /tmp: the tests' normal users and libvirt's qemu user reach their own folders in it.
  chmodSync(dir, 0o1777);
  console.log(`[lane ${number}] TMPDIR=${dir}: ${files.map((file) => file.replace('build/test/', '')).join(' ')}`);
  const child = spawn(process.execPath, testArgs(1, files), {
    env: { ...process.env, TMPDIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => console.log(`[lane ${number}] ${line}`));
  }
  return new Promise((resolve) => {
    child.on('close', (code) => {
      rmSync(dir, { recursive: true, force: true });
      console.log(`[lane ${number}] finished: exit code ${code}`);
      resolve(code ?? 1);
    });
  });
}

const only = process.argv.slice(2);
const files = find('build/test')
  .filter((file) => only.length === 0 || only.some((part) => matches(file, part)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${only.join(' ')}`);
  process.exit(1);
}

if (only.length > 0) {
  const fastOnly = only.every((part) => part === 'fast');
  process.exit(runInline(fastOnly ? availableParallelism() : 1, files));
}

const fast = files.filter((file) => matches(file, 'fast'));
const alone = files.filter((file) => ALONE.some((part) => file.includes(part)));
const rest = files.filter((file) => !fast.includes(file) && !alone.includes(file));
const laneCount = Math.max(1, Math.min(Number(process.env.TEST_LANES ?? 2), availableParallelism()));
const statuses = [runInline(availableParallelism(), fast), runInline(1, alone)];
statuses.push(...(await Promise.all(lanesOf(rest, laneCount).map((lane, i) => runLane(i + 1, lane.files)))));
const failed = statuses.some((status) => status !== 0);
console.log(failed ? 'some tests failed: see the ✖ lines above' : 'every test passed');
process.exit(failed ? 1 : 0);
