/**
 * Builds where users run them (a private home, file: URIs and odd folder names, a normal user through
 * qemu:///session without sudo): nothing here changes the host for tests beside it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CLI, ensureFixtureInstaller, makeWorkDir, writeFixtureConfig } from '../support/fixture.js';
import { inspectImage } from '../support/image-files.js';
import { leftovers } from '../support/leftovers.js';
import { builtStem, runCli } from '../support/run-cli.js';
import { BUILD_USER, ensureBuildUser, revokeRootCommands, sessionDomains } from '../support/unprivileged-user.js';

const cleanups: Array<() => void> = [];
after(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
});

function chownTree(path: string, uid: number): void {
  execFileSync('chown', ['-R', `${uid}:${uid}`, path]);
}

describe('builds where users actually run them', () => {
  test("a working folder inside root's private home (700) builds, and the ACL granted to qemu is removed afterwards", async () => {
    const home = mkdtempSync('/root/image-factory-private-');
    cleanups.push(() => rmSync(home, { recursive: true, force: true }));
    chmodSync(home, 0o700);
    const { config, image } = writeFixtureConfig(home, { directives: { 'data-mb': 16 } });
    const run = await runCli([image], { cwd: home, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /is private: letting libvirt-qemu \(qemu\) pass through it during the install/);
    const stem = builtStem(run.stderr, image);
    execFileSync('sha256sum', ['-c', `${stem}.qcow2.sha256sum`], { cwd: home });
    for (const folder of ['/root', home]) {
      const acl = execFileSync('getfacl', ['--omit-header', '--absolute-names', folder], { encoding: 'utf8' });
      assert.doesNotMatch(acl, /libvirt-qemu/, `the ACL on ${folder} was not removed`);
    }
    assert.equal(statSync(home).mode & 0o777, 0o700);
    assert.deepEqual(leftovers(home, stem), []);
  });

  test('file: URIs, a relative path, and folders with spaces and commas', async () => {
    const dir = makeWorkDir('paths');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const fixture = ensureFixtureInstaller();
    const odd = join(dir, 'installer files, v1');
    mkdirSync(odd);
    chmodSync(odd, 0o755);
    copyFileSync(join(fixture, 'vmlinuz'), join(odd, 'vmlinuz'));
    copyFileSync(join(fixture, 'initrd.gz'), join(odd, 'initrd.gz'));
    const answerDir = join(dir, 'answer files');
    mkdirSync(answerDir);
    writeFileSync(join(answerDir, 'my answer.cfg'), '# fixture: data-mb=8\n');
    const out = join(dir, 'out, final');
    mkdirSync(out);
    chmodSync(out, 0o755);
    const { config, image } = writeFixtureConfig(dir, {
      keys: {
        linux: `file:${odd}/vmlinuz`,
        initrd: 'installer files, v1/initrd.gz',
        preseed: 'answer files/my answer.cfg',
        cache_dir: join(dir, 'cache dir, too'),
      },
    });
    const run = await runCli([image, '--output-dir', out], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    const stem = builtStem(run.stderr, image);
    execFileSync('sha256sum', ['-c', `${stem}.qcow2.sha256sum`], { cwd: out });
    assert.match(run.stderr, new RegExp(`--location .*cache dir, too/${image}.*kernel=vmlinuz,initrd=initrd\\.gz`));
    assert.deepEqual(leftovers(out, stem), []);

    // file:///path works too.
    const second = makeWorkDir('fileuri');
    cleanups.push(() => rmSync(second, { recursive: true, force: true }));
    const other = writeFixtureConfig(second, {
      keys: { linux: `file://${fixture}/vmlinuz`, initrd: `file:${fixture}/initrd.gz` },
      directives: { 'data-mb': 8 },
    });
    const built = await runCli([other.image], { cwd: second, env: { IMAGE_FACTORY_CONFIG: other.config } });
    assert.equal(built.code, 0, built.stderr);
    const otherStem = builtStem(built.stderr, other.image);
    execFileSync('sha256sum', ['-c', `${otherStem}.qcow2.sha256sum`], { cwd: second });
    assert.deepEqual(leftovers(second, otherStem), []);
  });
});

describe('a build as a normal user through qemu:///session', () => {
  async function runAsUser(dir: string, config: string, image: string) {
    const { home } = ensureBuildUser();
    return runCli([image], {
      cwd: dir,
      env: { IMAGE_FACTORY_CONFIG: config, HOME: home, USER: BUILD_USER, LOGNAME: BUILD_USER },
      command: ['runuser', '-u', BUILD_USER, '--', process.execPath, CLI],
    });
  }

  function userWorkDir(name: string): { dir: string; config: string; image: string } {
    const { uid } = ensureBuildUser();
    const dir = makeWorkDir(name);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const fixture = ensureFixtureInstaller();
    copyFileSync(join(fixture, 'vmlinuz'), join(dir, 'vmlinuz'));
    copyFileSync(join(fixture, 'initrd.gz'), join(dir, 'initrd.gz'));
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': 16 },
      keys: { linux: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.gz') },
    });
    chownTree(dir, uid);
    chownSync(dir, uid, uid);
    return { dir, config, image };
  }

  test('without any sudoers rule it builds (the scrub runs in the appliance as the user), and removes logs in root-only folders', async () => {
    revokeRootCommands();
    const { dir, config, image } = userWorkDir('user');
    const run = await runAsUser(dir, config, image);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /--connect qemu:\/\/\/session/);
    assert.doesNotMatch(run.stderr, /Calling sudo/);
    assert.match(run.stderr, /Calling guestfish run\n/);
    const stem = builtStem(run.stderr, image);
    const qcow2 = join(dir, `${stem}.qcow2`);
    assert.equal(statSync(qcow2).uid, ensureBuildUser().uid, 'the image belongs to the user who built it');
    execFileSync('sha256sum', ['-c', `${stem}.qcow2.sha256sum`], { cwd: dir });
    inspectImage(qcow2, (root) => {
      for (const log of ['root/anaconda-ks.cfg', 'root/install.log', 'var/log/installer']) {
        assert.ok(!existsSync(join(root, log)), `${log} was not removed`);
      }
      assert.ok(existsSync(join(root, 'root/answer.cfg')), 'the rest of /root is intact');
      // Generalised through sudo too: the machine ID emptied, the host keys and root's history removed.
      assert.equal(readFileSync(join(root, 'etc/machine-id'), 'utf8'), '');
      assert.ok(!existsSync(join(root, 'etc/ssh/ssh_host_ed25519_key')));
      assert.ok(!existsSync(join(root, 'root/.bash_history')));
    });
    assert.deepEqual(leftovers(dir, stem), []);
    assert.deepEqual(sessionDomains(stem), []);
  });
});
