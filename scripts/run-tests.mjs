// Run compiled test files with Node's test runner.
//
//   node scripts/run-tests.mjs              every test, one file at a time: the
//                                           VM tests share libvirt, loop devices and two cores
//   node scripts/run-tests.mjs fast         the tests of test/fast/ (no root, no libvirt), in parallel
//   node scripts/run-tests.mjs vm/boot-test files whose path contains this
//
// The tiers, by what their tests start: test/fast (nothing: pure code, the
// recording host, local files), test/command (the built command and action as
// root, no VM), test/servers (rsync daemon, sshd, HTTP servers on 127.0.0.1),
// test/vm (libvirt and qemu: whole builds on the fixture installers).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const only = process.argv.slice(2);
const fastOnly = only.length > 0 && only.every((part) => part === 'fast');
const files = find('build/test')
  .filter(
    (file) =>
      only.length === 0 || only.some((part) => file.startsWith(join('build/test', part, '/')) || file.includes(part)),
  )
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${only.join(' ')}`);
  process.exit(1);
}
const concurrency = fastOnly ? availableParallelism() : 1;
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
