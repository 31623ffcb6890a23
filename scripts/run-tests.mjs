// Run compiled test files with Node's test runner.
//
//   node scripts/run-tests.mjs              every test: test/fast and test/tools in parallel and,
//                                           beside them, the tests that change the host for every VM
//                                           (/dev/kvm's mode, guestfish removed) one at a time; then
//                                           the rest in two lanes (see below)
//   node scripts/run-tests.mjs fast         the tests of test/fast/ (any user, nothing but Node and the
//                                           npm packages), in parallel; `tools` likewise for test/tools/
//   node scripts/run-tests.mjs vm/boot-test test/vm/boot-test.test.ts, by its path under test/ (the
//                                           .test.ts may be left off; a folder, vm or vm/, names every
//                                           file in it); the files named run one at a time
//
// The tiers, by what their tests need: test/fast (nothing: pure code, the
// recording host, local files, servers of its own on 127.0.0.1), test/tools
// (python3 with PyYAML, xmllint, debconf, dpkg, rpm, sh running the shipped
// answer files' scripts: the answer files and the shipped definitions checked
// with the installers' own tools, our parsers and orders against Python's,
// dpkg's and rpm's), test/command (the built command and action as root, no
// VM), test/servers (rsync daemon, sshd, HTTP servers on 127.0.0.1), test/vm
// and test/action (libvirt and qemu: whole builds on the fixture installers).
//
// Lanes: a TCG guest keeps one core busy and most of a VM test is its guest,
// so on a machine with two cores or more the slow tiers run as TEST_LANES
// (default 2) runners side by side, each file in exactly one lane, each lane
// with a temporary folder of its own (TMPDIR), so that a test's look for
// leftovers sees its own lane only. Each file runs in a test process of its
// own; a free lane takes the longest file left, by the seconds each took when
// it last passed in a lane: DURATIONS_FILE, which every lane run updates, or
// SEED_DURATIONS (checked in) for a file it lacks; a file in neither counts as
// SHORT_FILE seconds. Each line of a lane's output starts with its number; at
// the end, each file's seconds.
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';

const TESTS = 'build/test';
/** The last passing run's seconds per file (its path under test/, compiled): written here, not checked in. */
const DURATIONS_FILE = '.test-durations.json';
/** The same, measured once in CI (a full run, two lanes, 2 cores): for a file DURATIONS_FILE lacks. */
const SEED_DURATIONS = 'scripts/test-durations.json';
const SHORT_FILE = 15;

/** Files that change the host for every test running beside them (they make /dev/kvm root-only for a while). */
const ALONE = ['vm/host-conditions.test.js', 'action/host-setup.test.js'];
/** The tiers that start no VM, run in one test process each with as many files at a time as there are cores. */
const PARALLEL_TIERS = ['fast', 'tools'];

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

/** A file's path under test/, compiled: `vm/boot-test.test.js`. */
const under = (file) => relative(TESTS, file);

/**
 * Whether `part` names the file: its path under test/ (`vm/boot-test`, with or without `.test.ts` or
 * `.test.js`, and with or without a leading `test/`), or a folder it is in (`vm`, `vm/`). Not a part of
 * a name: `vm/build` is not `action/build`, and `action/installer-cache` is not its `-v2`.
 */
function matches(file, part) {
  const path = part
    .replace(/^(build\/)?test\//, '')
    .replace(/\.test\.[jt]s$/, '')
    .replace(/\/+$/, '');
  const name = under(file);
  return name === `${path}.test.js` || name.startsWith(`${path}/`);
}

function readDurations(path) {
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    console.error(`${path}: ${error.message}; balancing the lanes without it`);
    return {};
  }
}

const durations = { ...readDurations(SEED_DURATIONS), ...readDurations(DURATIONS_FILE) };
const seconds = (file) => durations[under(file)] ?? SHORT_FILE;

/** Keeps the seconds of each file that passed in a lane, for the next run's balance. */
function saveDurations() {
  const passed = runs.filter((run) => run.code === 0);
  if (passed.length === 0) return;
  const saved = readDurations(DURATIONS_FILE);
  for (const run of passed) saved[run.file] = Math.round(run.seconds);
  const sorted = Object.fromEntries(Object.entries(saved).sort(([, a], [, b]) => b - a));
  writeFileSync(DURATIONS_FILE, `${JSON.stringify(sorted, null, 2)}\n`);
}

/** A file's run: its lane, its seconds and its exit status. */
const runs = [];

/** Run one file with the lane's TMPDIR; each output line prefixed with the lane's number. */
function runFile(number, dir, file) {
  const started = Date.now();
  const child = spawn(process.execPath, testArgs(1, [file]), {
    env: { ...process.env, TMPDIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  relay(child, `[lane ${number}]`, under(file));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      const run = { file: under(file), lane: number, seconds: (Date.now() - started) / 1000, code };
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

/** Each slow file's seconds and lane, longest first (saveDurations keeps them for the next run). */
function printDurations() {
  console.log('seconds per file (lane):');
  for (const run of [...runs].sort((a, b) => b.seconds - a.seconds)) {
    console.log(`  ${run.seconds.toFixed(0).padStart(6)}  ${run.file} (${run.lane})${run.code === 0 ? '' : ' FAILED'}`);
  }
}

const only = process.argv.slice(2);
const all = find(TESTS).sort();
const unknown = only.filter((part) => !all.some((file) => matches(file, part)));
if (unknown.length > 0) {
  console.error(
    `no test file is named by ${unknown.join(', ')} (a path under test/, such as vm/boot-test, or a folder)`,
  );
  process.exit(1);
}
const files = all.filter((file) => only.length === 0 || only.some((part) => matches(file, part)));

if (only.length > 0) {
  const parallel = only.every((part) => PARALLEL_TIERS.some((tier) => matches(join(TESTS, tier, 'x.test.js'), part)));
  process.exit(runInline(parallel ? availableParallelism() : 1, files));
}

const fast = files.filter((file) => PARALLEL_TIERS.some((tier) => matches(file, tier)));
const alone = files.filter((file) => ALONE.includes(under(file)));
const rest = files.filter((file) => !fast.includes(file) && !alone.includes(file));
const laneCount = Math.max(1, Math.min(Number(process.env.TEST_LANES ?? 2), availableParallelism()));
// test/fast and test/tools need no VM, so the files that must run with no VM beside them run at the same time.
const statuses = await Promise.all([runGroup('fast+tools', availableParallelism(), fast), runGroup('alone', 1, alone)]);
const queue = [...rest].sort((a, b) => seconds(b) - seconds(a));
const lanes = Array.from({ length: Math.min(laneCount, queue.length) }, (_, i) => runLane(i + 1, queue));
statuses.push(...(await Promise.all(lanes)));
printDurations();
saveDurations();
for (const [label, lines] of failures) {
  console.log(`failing tests of ${label} (the first ${FAILURE_LINES} lines):`);
  for (const line of lines) console.log(`  ${line}`);
}
const failed = statuses.some((status) => status !== 0);
console.log(failed ? 'some tests failed: see the ✖ lines above and the failing tests just above' : 'every test passed');
process.exit(failed ? 1 : 0);
