import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KVM_UDEV_RULE_PATH } from '../../src/host/host-setup.js';
import { removeRunnerDirs, runMain } from '../support/action-runner.js';
import { writeFixtureConfig } from '../support/fixture.js';
import { leftovers } from '../support/leftovers.js';
import { fixtureInputs, isolatedConfig, removeWorkDirs, workDir } from './fixture-build.js';
import { builtStem } from '../support/run-cli.js';

after(() => {
  removeWorkDirs();
  removeRunnerDirs();
});

// These change the machine (and put it back): root on a Debian-like host only.
const isRoot = process.getuid?.() === 0;
const hasApt = existsSync('/usr/bin/apt-get') && existsSync('/usr/bin/dpkg');
const skip = !isRoot || !hasApt ? 'needs root and apt-get (it installs packages for real)' : false;
const GUESTFISH = '/usr/bin/guestfish';
const ANSIBLE_PLAYBOOK = '/usr/bin/ansible-playbook';

function groupName(gid: number): string {
  return execFileSync('getent', ['group', String(gid)], { encoding: 'utf8' }).split(':')[0];
}

describe('install-dependencies: true, for real on this machine', { skip }, () => {
  test('with every program present it installs nothing, finds libvirt answering, and opens a root-only /dev/kvm to the kvm group', async (t) => {
    if (!existsSync('/dev/kvm')) {
      t.skip('no /dev/kvm here');
      return;
    }
    const dir = workDir('setup-kvm');
    // A kernel that does not exist: the build stops at its first step, right after preparing the runner.
    const missingKernel = join(dir, 'no-such-vmlinuz');
    const { config, image } = writeFixtureConfig(dir, { name: 'action-setup-kvm', keys: { linux: missingKernel } });
    const device = statSync('/dev/kvm');
    const ruleExisted = existsSync(KVM_UDEV_RULE_PATH);
    // As a kernel without a udev rule leaves it.
    chmodSync('/dev/kvm', 0o600);
    try {
      const run = await runMain(
        { ...fixtureInputs(dir, config, image), 'install-dependencies': 'true' },
        { env: isolatedConfig(dir) },
      );

      assert.match(run.stdout, /::group::Prepare the runner\n/);
      assert.match(run.stdout, /All the programs a build needs are installed\./);
      assert.doesNotMatch(
        run.stdout,
        /\$ (sudo -n )?(env DEBIAN_FRONTEND=noninteractive )?apt-get/,
        'nothing to install: not even apt-get update',
      );
      assert.match(run.stdout, /libvirt answers at qemu:\/\/\/system\./);
      assert.match(
        run.stdout,
        /\/dev\/kvm is mode 600 \(root only\): opening it to the kvm group as distributions do\./,
      );
      assert.ok(
        run.annotations.some(
          (a) =>
            a.level === 'notice' &&
            /\/dev\/kvm was root-only \(mode 600\); it is now group kvm, mode 660/.test(a.message),
        ),
        run.stdout,
      );
      assert.match(run.stdout, /KVM is (usable: installs run at native speed|not usable: .+)\./);
      const fixed = statSync('/dev/kvm');
      assert.equal(fixed.mode & 0o777, 0o660);
      assert.equal(groupName(fixed.gid), 'kvm');
      assert.equal(readFileSync(KVM_UDEV_RULE_PATH, 'utf8'), 'KERNEL=="kvm", GROUP="kvm", MODE="0660"\n');

      assert.equal(run.code, 1);
      const errors = run.annotations.filter((a) => a.level === 'error').map((a) => a.message);
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0], /^The fetch step .* failed: .*no-such-vmlinuz/s);
    } finally {
      if (!ruleExisted) rmSync(KVM_UDEV_RULE_PATH, { force: true });
      execFileSync('chown', [`${device.uid}:${device.gid}`, '/dev/kvm']);
      chmodSync('/dev/kvm', device.mode & 0o7777);
    }
  });

  test('a missing program (guestfish) is installed with apt-get, and the build then uses it', async () => {
    const dir = workDir('setup-apt');
    const { config, image } = writeFixtureConfig(dir, { name: 'action-setup-apt' });
    // guestfish is a package of its own, which libguestfs-tools depends on: removing it removes both.
    execFileSync('apt-get', ['remove', '-y', '-q', 'guestfish', 'libguestfs-tools'], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    try {
      assert.ok(!existsSync(GUESTFISH), 'guestfish was not removed');
      const run = await runMain(
        { ...fixtureInputs(dir, config, image), 'install-dependencies': 'true' },
        { env: isolatedConfig(dir) },
      );
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.ok(existsSync(GUESTFISH), 'guestfish is back');
      assert.match(run.stdout, /Missing programs guestfish; installing libguestfs-tools with apt-get\./);
      const update = run.stdout.search(/\$ apt-get -o DPkg::Lock::Timeout=300 -q update/);
      const install = run.stdout.search(
        /\$ env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q -y install libguestfs-tools\n/,
      );
      assert.ok(update >= 0 && install > update, 'apt-get update, then apt-get install libguestfs-tools');
      assert.match(run.stdout, /Installed libguestfs-tools \(for programs guestfish\)\./);
      assert.match(run.stdout, /\$ guestfish run\n/, 'the scrub step ran in the installed appliance');
      assert.deepEqual(leftovers(dir, builtStem(run.stdout, image)), []);
    } finally {
      // Leave the machine as it was.
      if (!existsSync(GUESTFISH)) {
        execFileSync('apt-get', ['install', '-y', '-q', 'libguestfs-tools'], {
          stdio: 'ignore',
          env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        });
      }
    }
  });

  test("a build with an ansible provisioner on a runner without Ansible: host setup installs Debian's ansible-core for it", async () => {
    const dir = workDir('setup-ansible');
    writeFileSync(join(dir, 'site.yml'), '- hosts: all\n  tasks: []\n');
    // A kernel that does not exist: the build stops at its first step, right after preparing the runner.
    const { config, image } = writeFixtureConfig(dir, {
      name: 'action-setup-ansible',
      keys: { linux: join(dir, 'no-such-vmlinuz'), provision: `ansible ${join(dir, 'site.yml')}` },
    });
    const apt = (args: string[]): void => {
      execFileSync('apt-get', ['-y', '-q', ...args], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    };
    apt(['remove', 'ansible-core']);
    try {
      assert.ok(!existsSync(ANSIBLE_PLAYBOOK), 'ansible-playbook was not removed');
      const run = await runMain(
        { ...fixtureInputs(dir, config, image), 'install-dependencies': 'true' },
        { env: isolatedConfig(dir) },
      );
      assert.match(run.stdout, /Missing programs ansible-playbook; installing ansible-core with apt-get\./);
      assert.match(run.stdout, /Installed ansible-core \(for programs ansible-playbook\)\./);
      assert.ok(existsSync(ANSIBLE_PLAYBOOK), 'ansible-playbook is installed');
      // It got past the host's checks (which require ansible-playbook for this build) to the missing kernel.
      assert.match(run.stdout + run.stderr, /no-such-vmlinuz/);
      assert.doesNotMatch(run.stdout + run.stderr, /ansible-playbook is not installed/);
    } finally {
      // Leave the machine as it was.
      if (!existsSync(ANSIBLE_PLAYBOOK)) apt(['install', 'ansible-core']);
    }
  });
});
