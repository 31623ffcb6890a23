import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeWorkDir, writeFixtureConfig } from '../support/fixture.js';
import { inspectImage } from '../support/image-files.js';
import { leftovers } from '../support/leftovers.js';
import { builtStem, runCli } from '../support/run-cli.js';

/** The host files the hostile guest's symlinks point at (see `hostile=` in test/fixture/README.md). */
const HOST_FILES = [
  'secret',
  'install.log',
  'installer/syslog',
  'installer/partman',
  'y2log',
  'adm/autoinstall/logs/x.log',
  'lib/YaST2/install.inf',
];

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function isLink(root: string, path: string): boolean {
  try {
    return lstatSync(join(root, path)).isSymbolicLink();
  } catch {
    return false;
  }
}

function lexists(root: string, path: string): boolean {
  try {
    lstatSync(join(root, path));
    return true;
  } catch {
    return false;
  }
}

describe('an installed system that is hostile to the host', () => {
  test('symlinks out of its root at log paths and on the way: nothing of the host is read, printed or deleted', async () => {
    const dir = makeWorkDir('untrusted-guest');
    const host = makeWorkDir('untrusted-host');
    dirs.push(dir, host);
    const marker = `HOST-FILE-${randomBytes(8).toString('hex')}`;
    for (const path of HOST_FILES) {
      mkdirSync(dirname(join(host, path)), { recursive: true });
      writeFileSync(join(host, path), `${marker} ${path}\n`);
    }
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': 0, hostile: host },
      keys: { format: 'raw', 'zero-free-space': 'discard', 'log-file': 'true' },
    });
    const run = await runCli([image, '--installer-logs'], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    const stem = builtStem(run.stderr, image);

    for (const path of HOST_FILES) {
      assert.equal(readFileSync(join(host, path), 'utf8'), `${marker} ${path}\n`, `host file ${path} changed`);
    }
    const logs = readdirSync(dir).filter((name) => name.endsWith('.log'));
    for (const text of [run.stderr, ...logs.map((name) => readFileSync(join(dir, name), 'utf8'))]) {
      assert.ok(!text.includes(marker), 'a host file was printed');
    }
    assert.match(run.stderr, /planted symlinks out of the root/);
    assert.match(run.stderr, /WARNING: not printing \/root\/anaconda-ks.cfg: it is a symlink to \//);
    assert.match(run.stderr, /WARNING: not printing \/var\/log\/YaST2\/y2log: it is a symlink to \//);
    assert.match(run.stderr, /WARNING: skipping \/var\/adm\/autoinstall: .*\(reached through a symlink\)/);
    assert.match(run.stderr, /WARNING: skipping \/var\/lib\/YaST2: .*\(reached through a symlink\)/);
    assert.match(run.stderr, /Removing \/root\/anaconda-ks.cfg \(a symlink to .*: the link only\)/);
    assert.match(run.stderr, /Removing \/var\/log\/installer \(a symlink to .*: the link only\)/);

    inspectImage(join(dir, `${stem}.raw`), (root) => {
      for (const path of ['root/anaconda-ks.cfg', 'root/install.log', 'var/log/installer', 'var/log/YaST2']) {
        assert.ok(!lexists(root, path), `${path} was not removed`);
      }
      // The links on the way are the guest's own: left as they are, never followed.
      assert.ok(isLink(root, 'var/adm') && readlinkSync(join(root, 'var/adm')) === `${host}/adm`);
      assert.ok(isLink(root, 'var/lib'));
      assert.ok(existsSync(join(root, 'etc/os-release')));
    });
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('a dpkg status far larger than the disk (a sparse file): refused by its size before a byte is copied', async () => {
    const dir = makeWorkDir('untrusted-sparse');
    dirs.push(dir);
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': 0, 'sparse-status': '3G' },
      keys: { format: 'raw' },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    const stem = builtStem(run.stderr, image);
    assert.match(
      run.stderr,
      /WARNING: not reading \/var\/lib\/dpkg\/status is 3221225472 bytes, more than the 536870912 bytes read of such a file: the manifest is made without it/,
    );
    assert.doesNotMatch(run.stderr, /RangeError/);
    const manifest = JSON.parse(readFileSync(join(dir, `${stem}.manifest.json`), 'utf8')) as { packages: unknown[] };
    assert.deepEqual(manifest.packages, []);
    assert.deepEqual(leftovers(dir, stem), []);
  });
});
