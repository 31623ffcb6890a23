import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { btrfsSubvolumeOption, parseFstab, resolveSpec } from '../../src/guest/fstab.js';
import type { FilesystemInfo } from '../../src/guest/layout.js';

const fs = (device: string, type: string, more: Partial<FilesystemInfo> = {}): FilesystemInfo => ({
  device,
  type,
  uuid: '',
  label: '',
  action: 'none',
  ...more,
});

const DISK: FilesystemInfo[] = [
  fs('/dev/sda1', 'vfat', { uuid: 'ABCD-1234', partuuid: '3d99de5b-d151-b645-a317-c06e074e5ffc', partlabel: 'EFI' }),
  fs('/dev/sda2', 'ext4', { uuid: 'b64ac71f-645a-462d-911d-523f3a2c2950', label: 'boot fs' }),
  fs('/dev/fix-vg/root', 'ext4', { uuid: '11111111-1111-1111-1111-111111111111' }),
  fs('/dev/fix-vg/var', 'xfs'),
  fs('/dev/sda3', 'btrfs', { uuid: '22222222-2222-2222-2222-222222222222' }),
];

const device = (spec: string): string | undefined => resolveSpec(spec, DISK)?.device;

describe('/etc/fstab, read as untrusted text', () => {
  test('entries that mount a file system at a path; comments, blank lines, swap and short lines skipped', () => {
    const entries = parseFstab(
      [
        '# <file system> <mount point> <type> <options> <dump> <pass>',
        'UUID=b64ac71f-645a-462d-911d-523f3a2c2950 /boot ext4 defaults 0 2',
        '',
        '   /dev/fix--vg/root\t/  ext4  errors=remount-ro  0  1   # the root',
        'UUID=aaaa none swap sw 0 0',
        '/swapfile swap swap defaults 0 0',
        'LABEL=boot\\040fs /mnt/with\\040blank auto',
        'justonefield',
      ].join('\n'),
    );
    assert.deepEqual(
      entries.map((e) => [e.line, e.spec, e.mountPoint, e.type, e.options.join(',')]),
      [
        [2, 'UUID=b64ac71f-645a-462d-911d-523f3a2c2950', '/boot', 'ext4', 'defaults'],
        [4, '/dev/fix--vg/root', '/', 'ext4', 'errors=remount-ro'],
        [7, 'LABEL=boot fs', '/mnt/with blank', 'auto', 'defaults'],
      ],
    );
  });

  test('each name an installer writes finds its file system on the disk', () => {
    assert.equal(device('UUID=b64ac71f-645a-462d-911d-523f3a2c2950'), '/dev/sda2');
    assert.equal(device('UUID="B64AC71F-645A-462D-911D-523F3A2C2950"'), '/dev/sda2');
    assert.equal(device('UUID=abcd-1234'), '/dev/sda1');
    assert.equal(device('LABEL=boot fs'), '/dev/sda2');
    assert.equal(device('PARTUUID=3D99DE5B-D151-B645-A317-C06E074E5FFC'), '/dev/sda1');
    assert.equal(device('PARTLABEL=EFI'), '/dev/sda1');
    assert.equal(device('/dev/disk/by-uuid/b64ac71f-645a-462d-911d-523f3a2c2950'), '/dev/sda2');
    assert.equal(device('/dev/disk/by-label/boot\\x20fs'), '/dev/sda2');
    assert.equal(device('/dev/disk/by-partuuid/3d99de5b-d151-b645-a317-c06e074e5ffc'), '/dev/sda1');
    assert.equal(device('/dev/mapper/fix--vg-root'), '/dev/fix-vg/root');
    assert.equal(device('/dev/fix-vg/var'), '/dev/fix-vg/var');
    assert.equal(device('/dev/vda2'), '/dev/sda2');
    assert.equal(device('/dev/sda3'), '/dev/sda3');
    assert.equal(device('/dev/xvda1'), '/dev/sda1');
    assert.equal(device('/dev/nvme0n1p3'), '/dev/sda3');
  });

  test('a name of nothing on the disk finds nothing', () => {
    for (const spec of [
      'UUID=99999999-0000-0000-0000-000000000000',
      'LABEL=Boot fs',
      'PARTUUID=00000000-01',
      '/dev/mapper/fix--vg-home',
      '/dev/mapper/novolume',
      '/dev/vdb1',
      '/dev/sda9',
      'tmpfs',
      'server:/export',
      'UUID=',
    ]) {
      assert.equal(device(spec), undefined, spec);
    }
  });

  test("a Btrfs entry's subvolume, as mount takes it", () => {
    assert.equal(btrfsSubvolumeOption(['defaults', 'subvol=@']), 'subvol=@');
    assert.equal(btrfsSubvolumeOption(['subvol=/@home', 'compress=zstd']), 'subvol=@home');
    assert.equal(btrfsSubvolumeOption(['subvolid=256']), 'subvolid=256');
    assert.equal(btrfsSubvolumeOption(['defaults']), undefined);
  });
});
