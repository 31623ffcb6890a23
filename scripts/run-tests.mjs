// Run compiled test files with Node's test runner.
//
//   node scripts/run-tests.mjs              every test: test/fast in parallel and, beside it, the
//                                           tests that change the host for every VM (/dev/kvm's mode,
//                                           guestfish removed) one at a time; then the rest in two
//                                           lanes (see below)
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
// leftovers sees its own lane only. Each file runs in a test process of its
// own; a free lane takes the longest file left, by the durations measured
// below (a file not listed counts as SHORT_FILE seconds). Each line of a
// lane's output starts with its number; at the end, each file's seconds.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** Seconds each slow file took in CI (a full run, two lanes, 2 cores), to balance the lanes. */
const MEASURED = {
  'vm/boot-test': 850,
  'vm/layouts': 1000,
  'vm/real-installer': 760,
  'vm/build': 800,
  'action/installer-cache-v2': 330,
  'vm/work-folders': 240,
  'action/installer-cache.test': 200,
  'vm/upload': 190,
  'vm/console': 180,
  'vm/stall': 130,
  'vm/arch': 120,
  'action/build': 100,
  'vm/untrusted-guest': 150,
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

/**
 * The failing tests' details, by the group or file that printed them: the
 * spec reporter's section after "✖ failing tests:", repeated at the end of the
 * run so that a log cut to its last lines still says what failed and why.
 */
const failures = new Map();
const FAILURE_LINES = 60;

/** Print a child's lines with a prefix, and keep its "failing tests" section under `label`. */
function relay(child, prefix, label) {
  let failing = false;
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      console.log(`${prefix} ${line}`);
      if (stream === child.stdout && line.startsWith('✖ failing tests:')) failing = true;
      else if (failing && stream === child.stdout && !/\(node:|^\s*at (async )?node:/.test(line)) {
        const kept = failures.get(label) ?? [];
        if (kept.length < FAILURE_LINES) kept.push(line);
        failures.set(label, kept);
      }
    });
  }
}

/** Run files in one test process, each output line prefixed with the group's name. */
function runGroup(name, concurrency, files) {
  if (files.length === 0) return Promise.resolve(0);
  const child = spawn(process.execPath, testArgs(concurrency, files), { stdio: ['ignore', 'pipe', 'pipe'] });
  relay(child, `[${name}]`, name);
  return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
}

const matches = (file, part) => file.startsWith(join('build/test', part, '/')) || file.includes(part);
const seconds = (file) => {
  const key = Object.keys(MEASURED).find((part) => file.includes(part));
  return key ? MEASURED[key] : SHORT_FILE;
};

/** A file's run: its lane, its seconds and its exit status. */
const runs = [];

/** Run one file with the lane's TMPDIR; each output line prefixed with the lane's number. */
function runFile(number, dir, file) {
  const started = Date.now();
  const child = spawn(process.execPath, testArgs(1, [file]), {
    env: { ...process.env, TMPDIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  relay(child, `[lane ${number}]`, file.replace('build/test/', ''));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      const run = { file: file.replace('build/test/', ''), lane: number, seconds: (Date.now() - started) / 1000, code };
      runs.push(run);
      console.log(`[lane ${number}] ${run.file}: exit code ${code} after ${run.seconds.toFixed(0)} s`);
      resolve(code ?? 1);
    });
  });
}

/**
 * A lane: takes the longest file left from the shared queue whenever it is
 * free, so a lane that finishes early takes more (a measured duration that is
 * off costs little).
 */
async function runLane(number, queue) {
  const dir = mkdtempSync(join(tmpdir(), `test-lane-${number}.`));
  // As /tmp: the tests' normal users and libvirt's qemu user reach their own folders in it.
  chmodSync(dir, 0o1777);
  console.log(`[lane ${number}] TMPDIR=${dir}`);
  let status = 0;
  for (let file = queue.shift(); file; file = queue.shift()) {
    if ((await runFile(number, dir, file)) !== 0) status = 1;
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(`[lane ${number}] finished: exit code ${status}`);
  return status;
}

/** Each slow file's seconds and lane, longest first: the figures MEASURED is updated from. */
function printDurations() {
  console.log('seconds per file (lane):');
  for (const run of [...runs].sort((a, b) => b.seconds - a.seconds)) {
    console.log(`  ${run.seconds.toFixed(0).padStart(6)}  ${run.file} (${run.lane})${run.code === 0 ? '' : ' FAILED'}`);
  }
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
// The fast tier needs no VM, so the files that must run with no VM beside them run at the same time.
const statuses = await Promise.all([runGroup('fast', availableParallelism(), fast), runGroup('alone', 1, alone)]);
const queue = [...rest].sort((a, b) => seconds(b) - seconds(a));
const lanes = Array.from({ length: Math.min(laneCount, queue.length) }, (_, i) => runLane(i + 1, queue));
statuses.push(...(await Promise.all(lanes)));
printDurations();
for (const [label, lines] of failures) {
  console.log(`failing tests of ${label} (the first ${FAILURE_LINES} lines):`);
  for (const line of lines) console.log(`  ${line}`);
}
const failed = statuses.some((status) => status !== 0);
console.log(failed ? 'some tests failed: see the ✖ lines above and the failing tests just above' : 'every test passed');
process.exit(failed ? 1 : 0);
