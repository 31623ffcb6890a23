import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { makeWorkDir, writeFixtureConfig } from '../support/fixture.js';
import { diskContains } from '../support/image-files.js';
import { leftovers } from '../support/leftovers.js';
import { builtStem, runCli } from '../support/run-cli.js';

/**
 * Each of today's layouts, built end to end by the fixture installer
 * (layout=…) and scrubbed in the libguestfs appliance; the finished qcow2 is
 * read back with guestfish (read-only), as a consumer of the image would.
 */

const env = { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' };

/** guestfish on the finished image, read-only: each command's output, `:`-separated in one appliance. */
function readImage(image: string, commands: string[][]): string {
  const args = ['--ro', '--format=qcow2', '-a', image, 'run'];
  for (const command of commands) args.push(':', ...command);
  return execFileSync('guestfish', args, { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** The host's LVM and device-mapper state, as text (what the build must not change). */
function hostStorageState(): string {
  const vgs = spawnSync('vgs', ['--noheadings', '-o', 'vg_name,vg_uuid'], { encoding: 'utf8' });
  const dm = spawnSync('dmsetup', ['ls'], { encoding: 'utf8' });
  return `vgs ${vgs.status}: ${vgs.stdout}\ndmsetup ${dm.status}: ${dm.stdout}`;
}

const lvmEnv = { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' };

/**
 * A volume group on the host, on a loop device over a file in a folder of its
 * own; every LVM command names that device alone (--devices). Metadata only:
 * pvcreate and vgcreate need no device-mapper (this host's kernel has none),
 * and the group has no logical volume, so nothing of it is ever activated.
 */
function hostVolumeGroup(name: string): { state: () => string; remove: () => void } {
  const folder = mkdtempSync(join(tmpdir(), 'host-vg-'));
  const file = join(folder, 'pv.img');
  writeFileSync(file, '');
  execFileSync('truncate', ['--size=64M', file]);
  let loop = '';
  const lvm = (...args: string[]) => execFileSync(args[0], args.slice(1), { encoding: 'utf8', env: lvmEnv });
  const remove = () => {
    try {
      if (loop) {
        spawnSync('vgremove', ['--yes', '--devices', loop, name], { env: lvmEnv, stdio: 'ignore' });
        spawnSync('pvremove', ['--yes', '--devices', loop, loop], { env: lvmEnv, stdio: 'ignore' });
        execFileSync('losetup', ['--detach', loop]);
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  };
  try {
    loop = execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim();
    lvm('pvcreate', '--quiet', '--yes', '--devices', loop, loop);
    lvm('vgcreate', '--quiet', '--devices', loop, name, loop);
  } catch (error) {
    remove();
    throw error;
  }
  const state = () =>
    lvm('vgs', '--noheadings', '--devices', loop, '-o', 'vg_name,vg_uuid,pv_count,lv_count,vg_attr', name) +
    lvm('pvs', '--noheadings', '--devices', loop, '-o', 'pv_name,pv_uuid,vg_name,pv_attr', loop);
  return { state, remove };
}

interface LayoutLine {
  device: string;
  type: string;
  uuid: string;
  mountPoint?: string;
}

/** What the scrub said it found (read before it changed anything): `layout: DEVICE: TYPE UUID U … mounted at M`. */
function scrubbedLayout(stderr: string): LayoutLine[] {
  return [...stderr.matchAll(/layout: (\/dev\/\S+): (\S+) UUID (\S+)(?: label \S+)?(?: mounted at (\S+))?:/g)].map(
    ([, device, type, uuid, mountPoint]) => ({ device, type, uuid, mountPoint }),
  );
}

async function buildLayout(layout: string, directives: Record<string, string> = {}) {
  const dir = makeWorkDir(`layout-${layout}`);
  const { config, image } = writeFixtureConfig(dir, {
    directives: { layout, 'data-mb': 48, ...directives },
    keys: { 'keep-raw': 'yes' },
  });
  const before = hostStorageState();
  const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
  const stem = builtStem(run.stderr, image);
  assert.equal(run.code, 0, run.stderr);
  const qcow2 = join(dir, `${stem}.qcow2`);
  const raw = join(dir, `${stem}.raw`);
  const found = scrubbedLayout(run.stderr);
  for (const disk of [raw, qcow2]) {
    // The kept small files are there (the search can find what is on the disk) ...
    assert.equal(diskContains(disk, 'fixture-kept:small:'), true, `no kept file's text in ${disk}`);
    // ... and nothing deleted by the installer (large or small, on any file system or in the swap area),
    // removed by the scrub or generalised is left in the image's bytes.
    assert.equal(diskContains(disk, 'fixture-garbage:'), false, `garbage survived into ${disk}`);
    assert.equal(diskContains(disk, 'fixture-secret:'), false, `a removed file's text survived into ${disk}`);
  }
  // The scrub's own check found every free block of every file system zero.
  for (const fs of found) {
    const what = fs.type === 'swap' ? 'non-zero blocks in the swap area' : 'non-zero free blocks';
    assert.match(run.stderr, new RegExp(`${fs.device} \\(${fs.type}\\): 0 ${what} \\(of \\d+ of \\d+ bytes\\)`));
  }
  assert.deepEqual(leftovers(dir, stem), []);
  assert.equal(hostStorageState(), before, "the host's volume groups and device-mapper tables changed");
  return { run, dir, qcow2, found };
}

/**
 * The UUID of each file system in the finished image, and that the installer
 * logs are gone; in the same appliance, `extra` commands of one line of
 * output each (their lines are returned, with /etc/fstab).
 */
function checkImage(
  qcow2: string,
  found: LayoutLine[],
  mounts: Array<[string, string]>,
  extra: string[][] = [],
): { fstab: string; extra: string[] } {
  const commands: string[][] = [...extra, ...found.map((fs) => ['vfs-uuid', fs.device])];
  for (const [device, at] of mounts) commands.push(['mount-ro', device, at]);
  commands.push(['exists', '/var/log/installer'], ['exists', '/root/anaconda-ks.cfg'], ['cat', '/etc/fstab']);
  const lines = readImage(qcow2, commands).split('\n');
  const extraLines = lines.splice(0, extra.length);
  found.forEach((fs, i) => assert.equal(lines[i], fs.uuid, `${fs.device}'s UUID changed`));
  assert.equal(lines[found.length], 'false', '/var/log/installer is still there');
  assert.equal(lines[found.length + 1], 'false', '/root/anaconda-ks.cfg is still there');
  return { fstab: lines.slice(found.length + 2).join('\n'), extra: extraLines };
}

describe("today's layouts, scrubbed in the appliance", () => {
  test('GPT with an EFI system partition (vfat) and an ext4 root', async () => {
    const { qcow2, found } = await buildLayout('gpt-esp');
    assert.deepEqual(
      found.map((fs) => [fs.type, fs.mountPoint]),
      [
        ['vfat', '/boot/efi'],
        ['ext4', '/'],
      ],
    );
    const { extra } = checkImage(
      qcow2,
      found,
      [
        ['/dev/sda2', '/'],
        ['/dev/sda1', '/boot/efi'],
      ],
      [
        ['part-get-parttype', '/dev/sda'],
        ['part-get-gpt-type', '/dev/sda', '1'],
      ],
    );
    assert.deepEqual(extra, ['gpt', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B']);
  });

  test('root plus a separate /var on XFS: the installer logs removed from /var', async () => {
    const { run, qcow2, found } = await buildLayout('var-xfs');
    assert.deepEqual(
      found.map((fs) => [fs.type, fs.mountPoint]),
      [
        ['ext4', '/'],
        ['xfs', '/var'],
      ],
    );
    assert.match(run.stderr, /\/dev\/sda2 \(xfs\): free space discarded: the raw file shrank by \d/);
    checkImage(qcow2, found, [
      ['/dev/sda1', '/'],
      ['/dev/sda2', '/var'],
    ]);
  });

  test('root plus swap: the swap area zeroed, its UUID and label kept, so fstab still finds it', async () => {
    const { run, qcow2, found } = await buildLayout('swap');
    const swap = found.find((fs) => fs.type === 'swap');
    assert.ok(swap, run.stderr);
    assert.match(run.stderr, /swap signature rewritten with the same UUID and label/);
    const { fstab, extra } = checkImage(qcow2, found, [['/dev/sda1', '/']], [['vfs-label', swap.device]]);
    assert.match(fstab, new RegExp(`UUID=${swap.uuid} none swap`));
    assert.deepEqual(extra, ['fixswap']);
  });

  test('/boot and root on separate ext4 partitions', async () => {
    const { qcow2, found } = await buildLayout('boot-root');
    assert.deepEqual(
      found.map((fs) => fs.mountPoint),
      ['/boot', '/'],
    );
    checkImage(qcow2, found, [
      ['/dev/sda2', '/'],
      ['/dev/sda1', '/boot'],
    ]);
  });

  test('Btrfs with the root on a subvolume: trimmed from the top level, every subvolume with it', async () => {
    const { run, qcow2, found } = await buildLayout('btrfs');
    assert.match(run.stderr, /\/dev\/sda1 \(btrfs\): free space discarded \(top level and subvolumes @, @home\)/);
    const out = readImage(qcow2, [
      ['vfs-uuid', '/dev/sda1'],
      ['mount-options', 'ro,subvol=@', '/dev/sda1', '/'],
      ['exists', '/var/log/installer'],
    ]);
    assert.equal(out, `${found[0].uuid}\nfalse\n`, run.stderr);
  });

  test('small free extents: a FAT ESP with 512-byte clusters, a 1 KiB-block ext4 root and XFS /var, small files deleted on each', async () => {
    const { run, qcow2, found } = await buildLayout('small-blocks');
    assert.deepEqual(
      found.map((fs) => [fs.type, fs.mountPoint]),
      [
        ['vfat', '/boot/efi'],
        ['ext4', '/'],
        ['xfs', '/var'],
      ],
    );
    assert.match(run.stderr, /\/dev\/sda1 \(vfat\): 0 non-zero free blocks \(of \d+ of 512 bytes\)/);
    assert.match(run.stderr, /\/dev\/sda2 \(ext4\): 0 non-zero free blocks \(of \d+ of 1024 bytes\)/);
    checkImage(qcow2, found, [
      ['/dev/sda2', '/'],
      ['/dev/sda3', '/var'],
    ]);
  });

  test("Btrfs whose /var subvolume's mount point is missing from the root: its logs are removed all the same", async () => {
    const { run, qcow2, found } = await buildLayout('btrfs-var');
    assert.match(run.stderr, /\/var is not a folder of the installed system's root/);
    assert.match(run.stderr, /Removing \/var\/log\/installer/);
    const out = readImage(qcow2, [
      ['vfs-uuid', '/dev/sda1'],
      ['mount-options', 'ro,subvol=@var', '/dev/sda1', '/'],
      ['exists', '/log/installer'],
      ['exists', '/log/YaST2/y2log'],
      ['exists', '/adm/autoinstall'],
    ]);
    assert.equal(out, `${found[0].uuid}\nfalse\nfalse\nfalse\n`, run.stderr);
  });

  test('LVM: /boot outside, root (ext4), /var (XFS) and swap on logical volumes; a host volume group of the same name untouched', async () => {
    // The guest's volume group is named like one the host has (made here, for this test's run alone).
    const vg = `fixvg${process.pid}`;
    const host = hostVolumeGroup(vg);
    try {
      const hostBefore = host.state();
      assert.match(hostBefore, new RegExp(`^\\s*${vg}\\s`));
      const { run, qcow2, found } = await buildLayout('lvm', { vg });
      assert.equal(host.state(), hostBefore, "the host's volume group of the same name changed");
      assert.deepEqual(
        found.map((fs) => [fs.device, fs.type, fs.mountPoint ?? '']).sort(),
        [
          [`/dev/${vg}/root`, 'ext4', '/'],
          [`/dev/${vg}/swap`, 'swap', ''],
          [`/dev/${vg}/var`, 'xfs', '/var'],
          ['/dev/sda1', 'ext4', '/boot'],
        ],
        run.stderr,
      );
      assert.match(run.stderr, /layout: \/dev\/sda2: left alone \(an LVM physical volume/);
      assert.match(run.stderr, new RegExp(`/dev/${vg}/var \\(xfs\\): free space discarded`));
      assert.match(
        run.stderr,
        new RegExp(`/dev/${vg}/swap: swap UUID \\S+ label fixswap: contents zeroed, swap signature rewritten`),
      );
      const swap = found.find((fs) => fs.type === 'swap');
      const { fstab, extra } = checkImage(
        qcow2,
        found,
        [
          [`/dev/${vg}/root`, '/'],
          ['/dev/sda1', '/boot'],
          [`/dev/${vg}/var`, '/var'],
        ],
        [['vfs-label', swap?.device ?? '']],
      );
      assert.deepEqual(extra, ['fixswap']);
      // fstab names the logical volumes both ways LVM does, and /boot by UUID.
      assert.match(fstab, new RegExp(`^/dev/mapper/${vg}-root / ext4 `, 'm'));
      assert.match(fstab, new RegExp(`^/dev/${vg}/var /var xfs `, 'm'));
      assert.match(fstab, new RegExp(`^/dev/mapper/${vg}-swap none swap `, 'm'));
    } finally {
      host.remove();
    }
  });
});
