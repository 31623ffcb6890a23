import assert from 'node:assert/strict';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ImageSpec } from '../../src/config/image-spec.js';
import type { FileInfo } from '../../src/host/host.js';
import { RecordingHost, type HostCall, type PlannedAnswer, type RecordingPlan } from '../../src/host/recording-host.js';
import { artifactsOf, firstImage, pathOf } from '../../src/pipeline/artifacts.js';
import { bootTest } from '../../src/pipeline/boot-test.js';
import type { BuildMetrics } from '../../src/supply-chain/metrics.js';
import { BuildError, buildImage } from '../../src/pipeline/build.js';
import { installSystem } from '../../src/pipeline/install.js';
import { scrubImage } from '../../src/pipeline/scrub.js';
import { VmStepError } from '../../src/vm/virt-install.js';
import { RecordingReporter, testContext, testSpec } from '../support/build-context.js';
import { fakeAppliance, ONE_EXT4, type FakeLayout } from '../support/fake-appliance.js';
import { builtStem } from '../support/run-cli.js';
import { metricsSchemaErrors } from '../support/metrics-schema.js';

/**
 * Steps run on the recording host: no root, no libvirt, no VM. Each test
 * asserts the commands a step ran, in order, and that what it "created" (loop
 * devices, mounts, domains, folders, as the recording host models them) was
 * undone.
 */

const work = mkdtempSync(join(tmpdir(), 'recorded-steps-'));
after(() => rmSync(work, { recursive: true, force: true }));

const DISK = '/images/.img.partial-XXXXXX/img.raw';

/** A raw file that shrinks once fstrim ran (discard works), or never (it does not). */
function rawFile(shrinks: boolean): (path: string, calls: readonly HostCall[]) => FileInfo {
  return (_path, calls) => {
    const trimmed = calls.some((call) => call.kind === 'run' && call.argv.includes('-fstrim'));
    return { size: 1 << 30, blocks: shrinks && trimmed ? 1000 : 400_000, uid: 0, gid: 0 };
  };
}

/**
 * A folder standing in for the installed system's mounted root, holding a few
 * installer logs: `guest` in the folder that makeTempDir "creates" (see scrubPlan).
 */
function guestTree(name: string): string {
  const root = join(work, name, 'guest');
  for (const [path, content] of [
    ['var/log/installer/syslog', 'installer: done\n'],
    ['root/anaconda-ks.cfg', '# kickstart\n'],
    ['etc/hostname', 'golden\n'],
    ['etc/fstab', 'UUID=11111111-2222-3333-4444-555555555555 / ext4 errors=remount-ro 0 1\n'],
  ]) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

/** Host files with unique content that a hostile guest points its symlinks at. */
function hostFiles(name: string): { dir: string; secret: string; content: string } {
  const dir = join(work, `host-${name}`);
  const content = `host content ${name} ${process.pid} ${Date.now()}`;
  for (const path of ['secret', 'syslog', 'installer/syslog', 'anaconda/anaconda.log', 'YaST2/y2log']) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), `${content} ${path}\n`);
  }
  return { dir, secret: join(dir, 'secret'), content };
}

function plant(root: string, path: string, target: string): void {
  rmSync(join(root, path), { recursive: true, force: true });
  mkdirSync(dirname(join(root, path)), { recursive: true });
  symlinkSync(target, join(root, path));
}

function assertHostUntouched(host: { dir: string; content: string }, log: string): void {
  assert.ok(!log.includes(host.content), `the log shows a host file:\n${log}`);
  for (const path of ['secret', 'syslog', 'installer/syslog', 'anaconda/anaconda.log', 'YaST2/y2log']) {
    assert.equal(readFileSync(join(host.dir, path), 'utf8'), `${host.content} ${path}\n`);
  }
}

const GF = 'guestfish --remote=4000 --';
/** A batched removal, as logged: what runs in the appliance's shell. */
const RM = 'rm -rf --';

/** Every removal the scrub ran (one rm-rf, or many in one rm -rf) is inside the guest with no symlink on the way. */
function assertRemovalsConfined(commands: readonly string[], root: string): void {
  const single = commands
    .filter((line) => line.startsWith(`${GF} -rm-rf /installed/`))
    .map((line) => ({ line, paths: [line.slice(`${GF} -rm-rf /installed/`.length)] }));
  const batched = commands
    .filter((line) => line.startsWith(`${RM} `))
    .map((line) => ({ line, paths: line.slice(`${RM} `.length).split(' ') }));
  assert.ok(single.length + batched.length > 0, 'the scrub removed nothing');
  for (const { line, paths } of [...single, ...batched]) {
    for (const removed of paths.filter((path) => !path.startsWith('/sysroot/installed_'))) {
      assert.ok(removed.startsWith('/sysroot/installed/') || line.startsWith(GF), line);
      const path = join(root, removed.replace(/^\/sysroot\/installed\//, ''));
      assert.ok(path.startsWith(`${root}/`), line);
      assert.equal(realpathSync(dirname(path)), dirname(path), `a symlink on the way: ${line}`);
    }
  }
}

/** The shown commands of the scrub (the appliance's launch, its remote commands); probes are quiet. */
function shown(reporter: RecordingReporter): string[] {
  return reporter.lines.filter((line) => line.startsWith('command: ')).map((line) => line.slice('command: '.length));
}

function scrubPlan(root: string, options: { shrinks?: boolean; layout?: FakeLayout } = {}): RecordingPlan {
  const appliance = fakeAppliance(root, options.layout);
  return {
    answers: [appliance.answer],
    readFile: appliance.readFile,
    stat: rawFile(options.shrinks ?? true),
  };
}

function spec(overrides: Partial<ImageSpec> = {}): ImageSpec {
  return testSpec({ outputDir: '/images', zeroFreeSpace: 'discard', ...overrides });
}

const LAUNCH = 'env LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish';
/** How the appliance's commands are shown: as guestfish would take each on its command line. */
const SH = 'guestfish';

describe('the scrub step on the recording host', () => {
  test('starts the appliance, mounts the installed system, removes the logs, trims on a fresh mount and stops it, in that order', async () => {
    const root = guestTree('scrub-discard');
    const { ctx, recording, reporter } = testContext(spec(), { recording: scrubPlan(root), uid: 0 });
    const result = await scrubImage(ctx, DISK);
    assert.deepEqual(
      shown(reporter),
      [
        LAUNCH,
        `${SH} config -global scsi-hd.discard_granularity=512`,
        `${SH} add-drive ${DISK} format:raw discard:besteffort`,
        `${SH} run`,
        `${SH} list-devices`,
        `${SH} blockdev-getsize64 /dev/sda`,
        `${SH} mount-ro /dev/sda1 /`,
        `${SH} umount-all`,
        `${SH} mkmountpoint /installed`,
        `${SH} mount /dev/sda1 /installed`,
        `${RM} /sysroot/installed/root/anaconda-ks.cfg /sysroot/installed/var/log/installer`,
        `${SH} umount-all`,
        `${SH} mount /dev/sda1 /`,
        `${SH} fstrim /`,
        `${SH} umount-all`,
        `${SH} vg-activate-all false`,
        `qemu-img map --output=json -f raw ${DISK}`,
      ].filter((line) => !line.startsWith('qemu-img map')),
    );
    assert.deepEqual(result.removed, ['/root/anaconda-ks.cfg', '/var/log/installer']);
    assert.equal(result.zeroing, 'discard');
    assert.deepEqual(result.layout.filesystems[0], {
      device: '/dev/sda1',
      type: 'ext4',
      uuid: '11111111-2222-3333-4444-555555555555',
      label: '',
      mountPoint: '/',
      removedLogs: ['/root/anaconda-ks.cfg', '/var/log/installer'],
      action: 'free space discarded; verified: 0 non-zero free blocks',
    });
    assert.match(reporter.text(), /\/dev\/sda1 \(ext4\): 0 non-zero free blocks \(of 101 of 4096 bytes\)/);
    assert.ok(recording?.commands().includes(`${GF} exit`));
    assert.deepEqual(recording?.leftovers(), []);
  });

  test('falls back to zerofree on ext4 when the raw file did not shrink, and says so', async () => {
    const root = guestTree('scrub-fallback');
    const { ctx, recording, reporter } = testContext(spec(), {
      recording: scrubPlan(root, { shrinks: false }),
      uid: 0,
    });
    const result = await scrubImage(ctx, DISK);
    assert.equal(result.zeroing, 'zerofree');
    const commands = recording?.commands() ?? [];
    assert.ok(commands.indexOf(`${GF} -zerofree /dev/sda1`) > commands.indexOf(`${GF} -fstrim /`));
    assert.ok(commands.indexOf(`${GF} -zerofree /dev/sda1`) < commands.indexOf(`${GF} exit`));
    assert.match(
      reporter.text(),
      /warning: discarding the free space of \/dev\/sda1 \(ext4\) did not punch holes .*falling back to zerofree/,
    );
    assert.deepEqual(recording?.leftovers(), []);
  });

  test('XFS where discard released nothing: its free space filled with zeros on a fresh mount, and says so', async () => {
    const root = guestTree('scrub-xfs-zeros');
    const layout: FakeLayout = {
      ...ONE_EXT4,
      filesystems: { '/dev/sda1': 'xfs' },
    };
    const { ctx, recording, reporter } = testContext(spec(), {
      recording: scrubPlan(root, { shrinks: false, layout }),
      uid: 0,
    });
    const result = await scrubImage(ctx, DISK);
    assert.equal(result.zeroing, 'zeros');
    const commands = shown(reporter);
    const fill = commands.indexOf(`${SH} zero-free-space /`);
    assert.deepEqual(commands.slice(fill - 1, fill + 2), [
      `${SH} mount /dev/sda1 /`,
      `${SH} zero-free-space /`,
      `${SH} umount-all`,
    ]);
    assert.ok(fill > commands.indexOf(`${SH} fstrim /`));
    assert.match(reporter.text(), /did not punch holes .*falling back to writing zeros over it/);
    assert.match(
      result.layout.filesystems[0].action,
      /free space filled with zeros; verified: 0 non-zero free blocks$/,
    );
    assert.deepEqual(recording?.leftovers(), []);
  });

  test('a work folder that cannot punch holes: the appliance works on a qcow2 overlay (512-byte clusters, as small as a discard), trusts fstrim there, and the overlay is committed into the raw disk and removed', async () => {
    const root = guestTree('scrub-overlay');
    const layout: FakeLayout = { ...ONE_EXT4, filesystems: { '/dev/sda1': 'xfs' } };
    const plan = scrubPlan(root, { shrinks: false, layout });
    plan.answers = [
      {
        match: (argv) => argv[0] === 'fallocate',
        result: { exitCode: 1, lastLines: ['fallocate: fallocate failed: Operation not supported'] },
      },
      ...(plan.answers ?? []),
    ];
    const { ctx, recording, reporter } = testContext(spec(), { recording: plan, uid: 0 });
    const result = await scrubImage(ctx, DISK);
    const overlay = `${DISK}.scrub.qcow2`;
    const commands = recording?.commands() ?? [];
    const probe = `${dirname(DISK)}/.punch-hole-probe`;
    assert.ok(commands.includes(`fallocate --punch-hole --offset 0 --length 65536 ${probe}`), commands.join('\n'));
    assert.deepEqual(recording?.fileOperations('writeFile'), [[probe]]);
    const removed = (recording?.fileOperations('remove') ?? []).map(([path]) => path);
    assert.ok(removed.includes(probe), 'the probe is removed');
    const create = commands.indexOf(`qemu-img create -q -f qcow2 -o cluster_size=512 -F raw -b ${DISK} ${overlay}`);
    const drive = commands.indexOf(`${GF} -add-drive ${overlay} format:qcow2 discard:besteffort`);
    const commit = commands.indexOf(`qemu-img commit -q ${overlay}`);
    assert.ok(create >= 0 && drive > create, commands.join('\n'));
    assert.ok(commit > commands.indexOf(`${GF} exit`), 'committed after the appliance is gone');
    assert.ok(removed.includes(overlay), 'the overlay is removed');
    // fstrim on the overlay is enough: no fallback, no zeros written through a file.
    assert.equal(result.zeroing, 'discard');
    assert.ok(!commands.includes(`${GF} -zero-free-space /`));
    assert.doesNotMatch(reporter.text(), /did not punch holes/);
    assert.match(reporter.text(), /cannot punch holes \(discards would be lost\): the scrub works on a qcow2 overlay/);
    assert.equal(
      result.layout.filesystems[0].action,
      "free space discarded (zeros in the scrub's overlay); verified: 0 non-zero free blocks",
    );
    // The check reads the raw disk once the overlay is committed into it.
    assert.ok(commands.indexOf(`qemu-img map --output=json -f raw ${DISK}`) > commit);
    assert.deepEqual(recording?.leftovers(), []);
  });

  test('a dpkg status far larger than the disk (sparse) is not copied: its size is asked first, and the build says so', async () => {
    const root = guestTree('scrub-sparse-status');
    const status = join(root, 'var/lib/dpkg/status');
    mkdirSync(dirname(status), { recursive: true });
    writeFileSync(status, 'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n');
    truncateSync(status, 3 * 2 ** 30);
    const { ctx, recording, reporter } = testContext(spec(), { recording: scrubPlan(root), uid: 0 });
    const result = await scrubImage(ctx, DISK);
    assert.match(
      reporter.text(),
      /not reading \/var\/lib\/dpkg\/status is 3221225472 bytes, more than the 536870912 bytes/,
    );
    assert.ok(!(recording?.commands() ?? []).some((command) => command.includes('-download /installed/var/lib/dpkg')));
    assert.deepEqual(result.inventory.packages, []);
  });

  test("a normal user runs nothing as root: the appliance is the build user's", async () => {
    const root = guestTree('scrub-user');
    const { ctx, recording } = testContext(spec(), { recording: scrubPlan(root), uid: 1000 });
    const result = await scrubImage(ctx, DISK);
    assert.deepEqual(result.removed, ['/root/anaconda-ks.cfg', '/var/log/installer']);
    assert.ok(!recording?.commands().some((command) => command.startsWith('sudo')), recording?.commands().join('\n'));
  });

  test('a guest whose log paths are symlinks out of its root: nothing of the host is printed, links removed as links', async () => {
    const host = hostFiles('links-at');
    const root = guestTree('scrub-links-at');
    const depth = '../'.repeat(root.split('/').length);
    plant(root, 'root/anaconda-ks.cfg', host.secret); // absolute, a printed log path
    plant(root, 'var/log/installer', host.dir); // absolute, a removed folder (and on the way to syslog)
    plant(root, 'root/install.log', `${depth}${host.secret.slice(1)}`); // relative, escaping with ..
    plant(root, 'var/log/anaconda', `../..${host.dir}`); // relative, on the way to var/log/anaconda/*
    plant(root, 'var/log/YaST2', 'YaST2'); // a loop
    const { ctx, recording, reporter } = testContext(spec({ installerLogs: true }), {
      recording: scrubPlan(root),
      uid: 0,
    });
    const result = await scrubImage(ctx, DISK);
    assertHostUntouched(host, reporter.text());
    assert.match(reporter.text(), /warning: not printing \/root\/anaconda-ks.cfg: it is a symlink to \/.*secret/);
    assert.match(
      reporter.text(),
      /warning: skipping \/var\/log\/anaconda\/\*: .* is missing \(reached through a symlink\)/,
    );
    assert.match(reporter.text(), /warning: skipping \/var\/log\/YaST2\/y2log: more than 40 symlinks/);
    assert.deepEqual(result.removed, [
      '/root/anaconda-ks.cfg',
      '/root/install.log',
      '/var/log/anaconda',
      '/var/log/installer',
      '/var/log/YaST2',
    ]);
    assertRemovalsConfined([...(recording?.commands() ?? []), ...shown(reporter)], root);
  });

  test('symlinks on the way to log paths are resolved inside the guest, or the path is skipped', async () => {
    const host = hostFiles('links-on-the-way');
    const root = guestTree('scrub-links-on-the-way');
    rmSync(join(root, 'var/log'), { recursive: true });
    rmSync(join(root, 'root'), { recursive: true });
    plant(root, 'var/log', host.dir); // absolute: resolved as the guest's own /<host.dir>, which it has not
    plant(root, 'root', `../../../..${host.dir}`); // relative, escaping: likewise
    plant(root, 'var/adm', '/usr/adm'); // absolute, inside the guest
    plant(root, 'var/lib', '../usr/lib'); // relative, inside the guest
    for (const path of ['usr/adm/autoinstall/logs/x.log', 'usr/lib/YaST2/install.inf']) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), `guest log ${path}\n`);
    }
    const { ctx, recording, reporter } = testContext(spec({ installerLogs: true }), {
      recording: scrubPlan(root),
      uid: 0,
    });
    const result = await scrubImage(ctx, DISK);
    assertHostUntouched(host, reporter.text());
    assert.match(reporter.text(), /info: Content of \/usr\/adm\/autoinstall\/logs\/x.log:\nguest log/);
    assert.match(reporter.text(), /warning: skipping \/var\/log\/installer: .*missing \(reached through a symlink\)/);
    assert.match(reporter.text(), /warning: skipping \/root\/anaconda-ks.cfg: .*missing \(reached through a symlink\)/);
    assert.deepEqual(result.removed, ['/usr/adm/autoinstall', '/usr/lib/YaST2']);
    assertRemovalsConfined([...(recording?.commands() ?? []), ...shown(reporter)], root);
  });

  test('a /var that is a symlink to a host folder: nothing of the host is listed, printed or removed', async () => {
    // The host's folder holds a log/ like the guest's /var: a survey or a walk that went through the symlink would
    // find the host's log files and remove them. (The survey drops listings reached through a symlink, and the
    // tree's own walk resolves /var inside the guest: either one alone keeps this test green.)
    const host = hostFiles('var-parent/log');
    const root = guestTree('scrub-var-link');
    plant(root, 'var', dirname(host.dir));
    const { ctx, recording, reporter } = testContext(spec({ installerLogs: true }), {
      recording: scrubPlan(root),
      uid: 0,
    });
    const result = await scrubImage(ctx, DISK);
    assertHostUntouched(host, reporter.text());
    assert.deepEqual(
      result.removed.filter((path) => path.startsWith('/var/')),
      [],
    );
    // The host folder lies under /var/tmp here: resolved in the guest, the link leads back to itself.
    assert.match(reporter.text(), /warning: skipping \/var\/log\/installer\S*: /);
    assertRemovalsConfined([...(recording?.commands() ?? []), ...shown(reporter)], root);
  });

  test('any layout: GPT with an EFI system partition, BIOS boot, /var on XFS, swap and LVM, each handled by what it holds', async () => {
    const root = guestTree('scrub-layout');
    mkdirSync(join(root, 'boot/efi'), { recursive: true });
    mkdirSync(join(root, 'srv'), { recursive: true });
    // The names installers write: a UUID, a quoted UUID, LVM's mapper and VG/LV names, a swap area, a tmpfs.
    writeFileSync(
      join(root, 'etc/fstab'),
      [
        '# /etc/fstab: static file system information.',
        'UUID=aaaaaaaa-0000-0000-0000-000000000003 / ext4 errors=remount-ro 0 1',
        'UUID="ABCD-1234" /boot/efi vfat umask=0077 0 1',
        '/dev/mapper/vg0-var /var xfs defaults 0 2',
        '/dev/vg0/srv\t/srv ext4 defaults 0 2',
        'UUID=aaaaaaaa-0000-0000-0000-000000000004 none swap sw 0 0',
        'tmpfs /tmp tmpfs defaults 0 0',
        '',
      ].join('\n'),
    );
    const layout: FakeLayout = {
      table: 'gpt',
      partitions: [
        { device: '/dev/sda1', type: '21686148-6449-6E6F-744E-656564454649', size: 1 << 20 },
        { device: '/dev/sda2', type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', size: 64 << 20 },
        { device: '/dev/sda3', type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', size: 512 << 20 },
        { device: '/dev/sda4', type: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', size: 64 << 20 },
        { device: '/dev/sda5', type: 'E6D6D379-F507-44C2-A23C-238F2A3DF928', size: 512 << 20 },
      ],
      filesystems: {
        '/dev/sda1': 'unknown',
        '/dev/sda2': 'vfat',
        '/dev/sda3': 'ext4',
        '/dev/sda4': 'swap',
        '/dev/vg0/var': 'xfs',
        '/dev/vg0/srv': 'ext4',
      },
      uuids: {
        '/dev/sda2': 'ABCD-1234',
        '/dev/sda3': 'aaaaaaaa-0000-0000-0000-000000000003',
        '/dev/sda4': 'aaaaaaaa-0000-0000-0000-000000000004',
      },
      pvs: ['/dev/sda5'],
      mountpoints: { '/': '/dev/sda3', '/boot/efi': '/dev/sda2', '/var': '/dev/vg0/var', '/srv': '/dev/vg0/srv' },
    };
    const { ctx, recording, reporter } = testContext(spec(), { recording: scrubPlan(root, { layout }), uid: 0 });
    const result = await scrubImage(ctx, DISK);
    const commands = shown(reporter);
    for (const expected of [
      `${SH} mount /dev/sda3 /installed`,
      `${SH} mount /dev/sda2 /installed_boot_efi`,
      `${SH} mount /dev/vg0/var /installed_var`,
      `${SH} mount /dev/vg0/srv /installed_srv`,
      `${RM} /sysroot/installed/root/anaconda-ks.cfg /sysroot/installed_var/log/installer`,
      `${SH} umount-all`,
      `${SH} mount /dev/sda2 /`,
      `${SH} mount /dev/vg0/var /`,
      `${SH} blkdiscard /dev/sda4`,
      `${SH} zero-device /dev/sda4`,
      `${SH} mkswap /dev/sda4 uuid:aaaaaaaa-0000-0000-0000-000000000004`,
      `${SH} vg-activate-all false`,
    ]) {
      assert.ok(commands.includes(expected), `${expected} not in:\n${commands.join('\n')}`);
    }
    // Everything zeroed on a fresh mount after umount-all.
    assert.ok(
      commands.indexOf(`${RM} /sysroot/installed/root/anaconda-ks.cfg /sysroot/installed_var/log/installer`) <
        commands.indexOf(`${SH} mount /dev/sda2 /`),
    );
    assert.ok(!commands.some((command) => / (mount|zerofree|fstrim) \/dev\/sda[15]/.test(command)));
    const byDevice = Object.fromEntries(result.layout.filesystems.map((fs) => [fs.device, fs]));
    assert.equal(byDevice['/dev/vg0/var'].mountPoint, '/var');
    assert.deepEqual(byDevice['/dev/vg0/var'].removedLogs, ['/var/log/installer']);
    assert.deepEqual(byDevice['/dev/sda3'].removedLogs, ['/root/anaconda-ks.cfg']);
    assert.match(byDevice['/dev/sda4'].action, /swap signature rewritten with the same UUID/);
    assert.deepEqual(
      result.layout.partitions.map((p) => p.typeName),
      ['BIOS boot', 'EFI system', 'Linux file system', 'Linux swap', 'Linux LVM'],
    );
    assert.deepEqual(result.layout.leftAlone, [
      { device: '/dev/sda1', why: 'a BIOS boot partition holding no file system known to the scrub' },
      { device: '/dev/sda5', why: 'an LVM physical volume (its logical volumes are handled)' },
    ]);
    assert.match(reporter.text(), /layout: \/dev\/sda1: left alone \(a BIOS boot partition/);
    assert.deepEqual(recording?.leftovers(), []);
  });

  test('the root is the file system holding /etc, not the first one: /boot first on the disk, then mounted under it', async () => {
    const root = guestTree('scrub-boot-root');
    mkdirSync(join(root, 'boot/grub'), { recursive: true });
    writeFileSync(
      join(root, 'etc/fstab'),
      'UUID=22222222-0000-0000-0000-000000000002 / ext4 defaults 0 1\nLABEL=BOOT /boot ext4 defaults 0 2\n',
    );
    const layout: FakeLayout = {
      table: 'msdos',
      partitions: [
        { device: '/dev/sda1', type: '0x83', size: 256 << 20 },
        { device: '/dev/sda2', type: '0x83', size: 1 << 30 },
      ],
      filesystems: { '/dev/sda1': 'ext4', '/dev/sda2': 'ext4' },
      uuids: {
        '/dev/sda1': '11111111-0000-0000-0000-000000000001',
        '/dev/sda2': '22222222-0000-0000-0000-000000000002',
      },
      labels: { '/dev/sda1': 'BOOT' },
      mountpoints: { '/': '/dev/sda2', '/boot': '/dev/sda1' },
    };
    const { ctx, reporter } = testContext(spec(), { recording: scrubPlan(root, { layout }), uid: 0 });
    const result = await scrubImage(ctx, DISK);
    const commands = shown(reporter);
    const first = commands.indexOf(`${SH} mount-ro /dev/sda1 /`);
    assert.deepEqual(commands.slice(first, first + 8), [
      `${SH} mount-ro /dev/sda1 /`,
      `${SH} umount-all`,
      `${SH} mount-ro /dev/sda2 /`,
      `${SH} umount-all`,
      `${SH} mkmountpoint /installed`,
      `${SH} mount /dev/sda2 /installed`,
      `${SH} mkmountpoint /installed_boot`,
      `${SH} mount /dev/sda1 /installed_boot`,
    ]);
    assert.match(reporter.text(), /Installed system's root: \/dev\/sda2\n/);
    assert.deepEqual(
      result.layout.filesystems.map((fs) => [fs.device, fs.mountPoint]),
      [
        ['/dev/sda1', '/boot'],
        ['/dev/sda2', '/'],
      ],
    );
  });

  test("an fstab name that is not on the disk is said, with the fstab's line, and the rest is mounted", async () => {
    const root = guestTree('scrub-fstab-missing');
    mkdirSync(join(root, 'srv'), { recursive: true });
    writeFileSync(
      join(root, 'etc/fstab'),
      'UUID=11111111-2222-3333-4444-555555555555 / ext4 defaults 0 1\nUUID=99999999-0000-0000-0000-000000000000 /srv ext4 defaults 0 2\nserver:/export /mnt nfs defaults 0 0\n',
    );
    const { ctx, reporter } = testContext(spec(), { recording: scrubPlan(root), uid: 0 });
    await scrubImage(ctx, DISK);
    assert.match(
      reporter.text(),
      /warning: the installed system's \/etc\/fstab \(line 2\) names UUID=99999999-0000-0000-0000-000000000000 for \/srv, which is not on the disk/,
    );
    assert.doesNotMatch(reporter.text(), /server:\/export/);
    assert.ok(shown(reporter).some((command) => command.endsWith(' /sysroot/installed/var/log/installer')));
  });

  test('a disk with no partition and no file system is refused, saying what was found, and the appliance stopped', async () => {
    const layout: FakeLayout = { table: 'none', partitions: [], filesystems: { '/dev/sda': 'unknown' } };
    const { ctx, recording } = testContext(spec(), { recording: scrubPlan(work, { layout }), uid: 0 });
    await assert.rejects(
      scrubImage(ctx, DISK),
      /Expected file systems on the installed disk, but found no partition table and no file system on the 2\.0 GiB disk \(did the installer write it\?\)\./,
    );
    assert.deepEqual(await ctx.cleanup.unwind(), []);
    assert.ok(recording?.commands().includes('kill -TERM 4000'));
    assert.deepEqual(recording?.leftovers(), []);
  });
});

describe('the scrub step when the appliance fails a path probe', () => {
  test('a listing that fails for a reason other than a missing path fails the scrub; the logs are never taken as absent', async () => {
    const root = guestTree('scrub-probe-error');
    const plan = scrubPlan(root);
    // The survey of the folders the scrub reads: find fails on /var/log (the shell's exit status and its error).
    const script = (argv: readonly string[]): string =>
      Buffer.from(/^echo (\S+) \|/.exec(argv[argv.length - 1] ?? '')?.[1] ?? '', 'base64').toString('utf8');
    const ioError: PlannedAnswer = {
      match: (argv) => argv.includes('-debug') && script(argv).includes("'/sysroot/installed/var/log'"),
      respond: () => ({
        stdout: `1 0\n${Buffer.from('find: /sysroot/installed/var/log: Input/output error\n').toString('base64')}\n`,
      }),
    };
    const { ctx, recording } = testContext(spec(), {
      recording: { ...plan, answers: [ioError, ...(plan.answers ?? [])] },
      uid: 0,
    });
    await assert.rejects(
      scrubImage(ctx, DISK),
      /a survey of guest folders failed in the appliance \(exit 1\): find: \/sysroot\/installed\/var\/log: Input\/output error/,
    );
    assert.deepEqual(await ctx.cleanup.unwind(), []);
    assert.ok(!recording?.commands().some((command) => /rm -rf|-rm-rf/.test(command)));
    assert.deepEqual(recording?.leftovers(), []);
  });
});

describe('the install step on the recording host', () => {
  const installer = { dir: '/cache/img', files: { linux: 'linux', initrd: 'initrd.gz' }, downloaded: false };
  const target = {
    domain: 'img-XXXXXX',
    diskPath: DISK,
    consoleLog: '/images/img.console.log',
    staging: '/images/.img.partial-XXXXXX',
  };

  test('injects a copy of an answer file whose name is not plain, runs virt-install, then undefines the domain', async () => {
    const answer = { kind: 'preseed' as const, path: '/etc/answers/my preseed.cfg' };
    const { ctx, recording } = testContext(spec({ answerFile: answer, append: 'auto=true' }), {
      recording: true,
      uid: 0,
    });
    await installSystem(ctx, target, installer);
    assert.deepEqual(recording?.fileOperations('copyFile'), [[answer.path, `${target.staging}/my_preseed.cfg`]]);
    const commands = recording?.commands() ?? [];
    const virtInstall = commands.find((command) => command.startsWith('virt-install --connect'));
    assert.match(
      virtInstall ?? '',
      /--extra-args 'preseed\/url=file:\/\/\/my_preseed\.cfg auto=true' --initrd-inject \/images\/\.img\.partial-XXXXXX\/my_preseed\.cfg$/,
    );
    assert.deepEqual(commands.slice(-3), [
      'virsh -c qemu:///system domstate img-XXXXXX',
      'virsh -c qemu:///system undefine img-XXXXXX',
      'virsh -c qemu:///system domstate img-XXXXXX',
    ]);
    assert.deepEqual(recording?.leftovers(), []);
    assert.deepEqual(ctx.cleanup.pending(), []);
  });

  test('firmware = uefi: the VM boots OVMF without Secure Boot, and its NVRAM goes with the domain', async () => {
    const { ctx, recording, reporter } = testContext(spec({ firmware: 'uefi' }), { recording: true, uid: 0 });
    await installSystem(ctx, target, installer);
    const commands = recording?.commands() ?? [];
    const virtInstall = commands.find((command) => command.startsWith('virt-install --connect')) ?? '';
    assert.match(
      virtInstall,
      / --boot uefi,firmware\.feature0\.name=secure-boot,firmware\.feature0\.enabled=no,firmware\.feature1\.name=enrolled-keys,firmware\.feature1\.enabled=no /,
    );
    assert.ok(commands.includes('virsh -c qemu:///system undefine img-XXXXXX --nvram'), commands.join('\n'));
    assert.deepEqual(recording?.fileOperations('remove').at(-1), ['/var/lib/libvirt/qemu/nvram/img-XXXXXX_VARS.fd']);
    assert.match(reporter.text(), /the installer's VM boots with UEFI \(OVMF, Secure Boot off\) firmware/);
    assert.deepEqual(recording?.leftovers(), []);
    assert.deepEqual(ctx.cleanup.pending(), []);
  });

  test('firmware = uefi-secure asks libvirt for OVMF with Secure Boot and enrolled keys; bios asks for nothing', async () => {
    const secure = testContext(spec({ firmware: 'uefi-secure' }), { recording: true, uid: 0 });
    await installSystem(secure.ctx, target, installer);
    const secureLine =
      secure.recording?.commands().find((command) => command.startsWith('virt-install --connect')) ?? '';
    assert.match(
      secureLine,
      /--boot uefi,[^ ]*feature0\.name=secure-boot,firmware\.feature0\.enabled=yes,[^ ]*enabled=yes /,
    );
    const bios = testContext(spec({ firmware: 'bios' }), { recording: true, uid: 0 });
    await installSystem(bios.ctx, target, installer);
    const biosLine = bios.recording?.commands().find((command) => command.startsWith('virt-install --connect')) ?? '';
    assert.doesNotMatch(biosLine, /--boot/);
    assert.ok(bios.recording?.commands().includes('virsh -c qemu:///system undefine img-XXXXXX'));
  });

  test("the console log is this build's own new file: the old one removed, a new one created without following a link", async () => {
    const { ctx, recording } = testContext(spec(), { recording: true, uid: 0 });
    await installSystem(ctx, target, installer);
    const operations = (recording?.calls ?? []).flatMap((call) =>
      call.kind === 'fs' && call.paths[0] === target.consoleLog ? [call.operation] : [],
    );
    assert.deepEqual(operations, ['remove', 'writeFile']);
  });

  test('a virt-install that fails is a VmStepError, and the domain stays registered for the build to undo', async () => {
    const { ctx } = testContext(spec(), {
      recording: {
        answers: [
          {
            match: /^virt-install --connect/,
            result: { exitCode: 1, lastLines: ['ERROR    Requested operation is not valid'] },
          },
        ],
      },
      uid: 0,
    });
    await assert.rejects(installSystem(ctx, target, installer), (error: unknown) => {
      assert.ok(error instanceof VmStepError);
      assert.match(error.message, /virt-install failed: .*Requested operation is not valid/s);
      return true;
    });
    assert.deepEqual(ctx.cleanup.pending(), [{ kind: 'domain', uri: 'qemu:///system', name: 'img-XXXXXX' }]);
  });
});

describe('the boot test on the recording host', () => {
  test('overlays the image, builds the seed, boots a transient VM with the build cpu, and removes all of it', async () => {
    const { ctx, recording } = testContext(
      spec({
        cpu: 'mode=maximum',
        bootTest: { enabled: true, timeoutMs: 60_000, expect: 'login:', cloudInit: true, ramMiB: 768 },
      }),
      {
        recording: true,
        uid: 0,
      },
    );
    await bootTest(ctx, '/images/.img.partial-XXXXXX/img.qcow2');
    const folder = '/images/.img.partial-XXXXXX/.boot-test-XXXXXX';
    const commands = recording?.commands() ?? [];
    assert.equal(
      commands[0],
      `qemu-img create -q -f qcow2 -F qcow2 -b /images/.img.partial-XXXXXX/img.qcow2 ${folder}/overlay.qcow2`,
    );
    assert.equal(
      commands[1],
      `xorriso -as mkisofs -quiet -volid cidata -joliet -rock -output ${folder}/seed.iso ${folder}/seed`,
    );
    assert.match(
      commands[3],
      /^virt-install .* --import --transient --name test-image-2026-01-01-boot-test-XXXXXX --vcpus 1 --memory 768 --cpu mode=maximum /,
    );
    assert.match(commands[3], /--disk path=[^ ]*seed\.iso,bus=virtio,format=raw,readonly=on /);
    assert.ok(
      commands.includes('virsh -c qemu:///system destroy test-image-2026-01-01-boot-test-XXXXXX'),
      commands.join('\n'),
    );
    const seedFiles = recording?.fileOperations('writeFile').map(([path]) => path);
    assert.deepEqual(seedFiles, [`${folder}/seed/meta-data`, `${folder}/seed/user-data`]);
    assert.deepEqual(recording?.leftovers(), []);
    assert.deepEqual(ctx.cleanup.pending(), []);
  });
});

describe('the boot test under UEFI on the recording host', () => {
  test('the transient VM boots OVMF, and the NVRAM libvirt leaves behind when it stops is removed', async () => {
    const { ctx, recording } = testContext(
      spec({
        firmware: 'uefi',
        bootTest: { enabled: true, timeoutMs: 60_000, expect: 'login:', cloudInit: false, ramMiB: 768 },
      }),
      { recording: true, uid: 0 },
    );
    await bootTest(ctx, '/images/.img.partial-XXXXXX/img.qcow2');
    const commands = recording?.commands() ?? [];
    assert.ok(commands.some((command) => /^virt-install .* --transient .* --boot uefi,/.test(command)));
    const nvram = '/var/lib/libvirt/qemu/nvram/test-image-2026-01-01-boot-test-XXXXXX_VARS.fd';
    assert.ok(
      recording?.fileOperations('remove').some(([path]) => path === nvram),
      JSON.stringify(recording?.fileOperations('remove')),
    );
    assert.deepEqual(recording?.leftovers(), []);
    assert.deepEqual(ctx.cleanup.pending(), []);
  });
});

describe('a whole build on the recording host', () => {
  const buildSpec = (overrides: Partial<ImageSpec> = {}): ImageSpec =>
    spec({
      installer: {
        kind: 'netboot',
        linux: {
          uri: 'https://mirror/linux',
          display: 'https://mirror/linux',
          scheme: 'https',
          location: 'https://mirror/linux',
        },
        initrd: {
          uri: 'https://mirror/initrd.gz',
          display: 'https://mirror/initrd.gz',
          scheme: 'https',
          location: 'https://mirror/initrd.gz',
        },
      },
      cacheDir: '/cache/test-image',
      ...overrides,
    });

  test('runs the steps in build order and publishes the image, its reports, its checksum and the checksum list last', async () => {
    const root = guestTree('build-guest');
    writeFileSync(join(root, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n');
    mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
    writeFileSync(
      join(root, 'var/lib/dpkg/status'),
      'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n',
    );
    const reporter = new RecordingReporter();
    const host = new RecordingHost(reporter, scrubPlan(root), 0);
    const result = await buildImage({ spec: buildSpec(), reporter, host, kvmUsable: false });
    // The install's VM and the metrics both need virt-install's version: it is asked once.
    const probes = host.calls.filter((call) => call.kind === 'run' && call.argv.join(' ') === 'virt-install --version');
    assert.equal(probes.length, 1);
    // The build starts by saying what it builds and the names it gets: the date is the build's start.
    assert.equal(
      reporter.lines.find((line) => line.includes('Building')),
      'info: Building image test-image (x86_64, bios) as test-image-2026-01-01.qcow2 in /images',
    );
    assert.equal(builtStem(reporter.text(), 'test-image'), 'test-image-2026-01-01');
    assert.deepEqual(reporter.steps, [
      'fetch',
      'disk',
      'install',
      'scrub',
      'convert',
      'checksum',
      'reports',
      'publish',
      'upload',
    ]);
    const firstWords = host.commands().map((command) => command.split(' ').slice(0, 2).join(' '));
    assert.equal(firstWords[0], 'qemu-img create');
    assert.ok(firstWords.indexOf('virt-install --connect') < firstWords.indexOf('env LIBGUESTFS_BACKEND=direct'));
    assert.ok(
      host.commands().indexOf(`${GF} exit`) < host.commands().findIndex((c) => c.startsWith('qemu-img convert')),
    );
    const published = host.fileOperations('publish').map(([, to]) => to);
    assert.deepEqual(published, [
      '/images/test-image-2026-01-01.qcow2',
      '/images/test-image-2026-01-01.manifest.json',
      '/images/test-image-2026-01-01.packages',
      '/images/test-image-2026-01-01.cdx.json',
      '/images/test-image-2026-01-01.metrics.json',
      '/images/test-image-2026-01-01.qcow2.sha256sum',
      '/images/test-image-2026-01-01.SHA256SUMS',
    ]);
    const staged = (name: string): string =>
      String(host.written.get(`/images/.test-image-2026-01-01.partial-XXXXXX/test-image-2026-01-01.${name}`));
    assert.equal(staged('packages'), 'hello 2.10-3\n');
    const sums = staged('SHA256SUMS').trimEnd().split('\n');
    assert.deepEqual(
      sums.map((line) => line.split('  ')[1]),
      ['qcow2', 'manifest.json', 'packages', 'cdx.json', 'metrics.json'].map((name) => `test-image-2026-01-01.${name}`),
    );
    // The metrics are the build's own: its steps' times up to the reports, its package count.
    const metrics = JSON.parse(staged('metrics.json')) as BuildMetrics;
    assert.deepEqual(metricsSchemaErrors(metrics), []);
    assert.deepEqual(
      metrics.steps,
      result.steps
        .filter((s) => metrics.steps.some((m) => m.step === s.step))
        .map((s) => ({ step: s.step, seconds: s.durationMs / 1000 })),
    );
    assert.deepEqual(
      metrics.steps.map((s) => s.step),
      ['fetch', 'disk', 'install', 'scrub', 'convert', 'checksum'],
    );
    assert.equal(metrics.packages, 1);
    assert.equal(metrics.host.accelerator, 'tcg');
    assert.deepEqual(result.metrics, metrics);
    assert.equal(result.changed, true);
    const { createHash } = await import('node:crypto');
    assert.equal(sums[1].split('  ')[0], createHash('sha256').update(staged('manifest.json')).digest('hex'));
    assert.equal(result.packageCount, 1);
    assert.equal(result.distribution, 'Debian GNU/Linux 12');
    assert.equal(pathOf(result.artifacts, 'sums'), '/images/test-image-2026-01-01.SHA256SUMS');
    assert.equal(firstImage(result.artifacts).final, '/images/test-image-2026-01-01.qcow2');
    assert.equal(result.accelerator, 'tcg');
    assert.deepEqual(host.leftovers(), []);
  });

  test('with signing-key: gpg signs SHA256SUMS in a throw-away home once it is written, the key on its standard input; the signature is published last', async () => {
    const root = guestTree('signing-guest');
    writeFileSync(join(root, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
    const reporter = new RecordingReporter();
    const host = new RecordingHost(reporter, scrubPlan(root), 0);
    const armour =
      '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlFgEZ0secretkeymaterial\n-----END PGP PRIVATE KEY BLOCK-----\n';
    const signing = { key: { text: armour }, passphrase: { text: 'pass phrase' }, where: "Input 'signing-key'" };
    const result = await buildImage({ spec: buildSpec({ signing }), reporter, host, kvmUsable: false });
    const gpg = host.commands().filter((command) => command.startsWith('gpg '));
    assert.equal(gpg.length, 3, gpg.join('\n'));
    assert.match(gpg[0], /^gpg --homedir \/\S+\/image-factory-gnupg\.\S+ --batch --no-tty --import$/);
    assert.match(
      gpg[1],
      /--passphrase-fd 0 --digest-algo SHA512 --output \S+\.SHA256SUMS\.gpg --detach-sign \S+\.SHA256SUMS$/,
    );
    const sumsWritten = host.calls.findIndex(
      (call) => call.kind === 'fs' && call.operation === 'writeFile' && call.paths[0].endsWith('.SHA256SUMS'),
    );
    const signed = host.calls.findIndex((call) => call.kind === 'run' && call.argv.includes('--detach-sign'));
    assert.ok(sumsWritten >= 0 && signed > sumsWritten, 'signed after SHA256SUMS is written');
    assert.ok(!reporter.text().includes('secretkeymaterial') && !reporter.text().includes('pass phrase'));
    const published = host.fileOperations('publish').map(([, to]) => to);
    assert.deepEqual(published.slice(-2), [
      '/images/test-image-2026-01-01.SHA256SUMS',
      '/images/test-image-2026-01-01.SHA256SUMS.gpg',
    ]);
    assert.equal(pathOf(result.artifacts, 'sums-signature'), '/images/test-image-2026-01-01.SHA256SUMS.gpg');
    assert.deepEqual(host.leftovers(), []);
  });

  test('skip-unchanged: the same packages and inputs publish and upload nothing; one more package publishes', async () => {
    const root = guestTree('skip-unchanged-guest');
    writeFileSync(join(root, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
    mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
    const hello = 'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n';
    writeFileSync(join(root, 'var/lib/dpkg/status'), hello);
    const answer = join(work, 'skip.preseed');
    writeFileSync(answer, 'd-i debian-installer/locale string en_US\n');
    const spec = buildSpec({ answerFile: { kind: 'preseed', path: answer }, skipUnchanged: true });
    const build = async (
      previous?: string,
    ): Promise<{
      host: RecordingHost;
      reporter: RecordingReporter;
      result: Awaited<ReturnType<typeof buildImage>>;
    }> => {
      const reporter = new RecordingReporter();
      const host = new RecordingHost(reporter, scrubPlan(root), 0);
      const previousManifest = previous
        ? ({ uri: previous, display: previous, scheme: 'file', location: previous } as const)
        : undefined;
      const result = await buildImage({ spec: { ...spec, previousManifest }, reporter, host, kvmUsable: false });
      return { host, reporter, result };
    };
    const first = await build();
    assert.equal(first.result.changed, true);
    const manifestText = String(
      first.host.written.get(`/images/.test-image-2026-01-01.partial-XXXXXX/test-image-2026-01-01.manifest.json`),
    );
    // The manifest records the inputs' digests for the next build to compare.
    const inputs = (JSON.parse(manifestText) as { inputs: Array<{ role: string }> }).inputs.map((input) => input.role);
    assert.deepEqual(inputs, ['answer-file']);
    const previous = join(work, 'skip-previous.manifest.json');
    writeFileSync(previous, manifestText);

    const same = await build(previous);
    assert.equal(same.result.changed, false);
    assert.deepEqual(same.host.fileOperations('publish'), []);
    assert.ok(!same.reporter.steps.includes('publish') && !same.reporter.steps.includes('upload'));
    assert.equal(same.reporter.lines.filter((line) => line.includes('Unchanged (skip-unchanged)')).length, 1);
    assert.deepEqual(same.host.leftovers(), []);

    writeFileSync(answer, 'd-i debian-installer/locale string de_DE\n');
    const otherAnswer = await build(previous);
    assert.equal(otherAnswer.result.changed, true);
    assert.match(otherAnswer.reporter.text(), /skip-unchanged: publishing: the inputs answer-file differ since /);
    writeFileSync(answer, 'd-i debian-installer/locale string en_US\n');

    writeFileSync(
      join(root, 'var/lib/dpkg/status'),
      `${hello}\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10\n`,
    );
    const more = await build(previous);
    assert.equal(more.result.changed, true);
    assert.match(more.reporter.text(), /skip-unchanged: publishing: 1 packages differ since /);
    assert.equal(more.host.fileOperations('publish').length, 8);
  });

  test('the accelerator chosen once is the one the installer VM, the appliance and the boot test run on', async () => {
    for (const kvmUsable of [true, false]) {
      const root = guestTree(`accelerator-${kvmUsable}`);
      const reporter = new RecordingReporter();
      const host = new RecordingHost(reporter, scrubPlan(root), 0);
      const bootTest = { enabled: true, timeoutMs: 60_000, expect: 'login:', cloudInit: false, ramMiB: 512 };
      const result = await buildImage({
        spec: buildSpec({ accelerator: 'auto', bootTest }),
        reporter,
        host,
        kvmUsable,
      });
      const [virtType, tcgOnly] = kvmUsable ? ['kvm', false] : ['qemu', true];
      assert.equal(result.accelerator, kvmUsable ? 'kvm' : 'tcg');
      const vms = host.commands().filter((command) => command.startsWith('virt-install --connect'));
      assert.equal(vms.length, 2, host.commands().join('\n'));
      for (const vm of vms) assert.match(vm, new RegExp(` --virt-type ${virtType} `));
      const appliance = host.commands().find((command) => command.startsWith('env LIBGUESTFS_BACKEND=direct'));
      assert.equal(appliance?.includes('LIBGUESTFS_BACKEND_SETTINGS=force_tcg'), tcgOnly, appliance);
    }
  });

  test('a list of formats: each converted from the one raw disk with its options, checksummed, published and listed; a previous manifest makes the changes', async () => {
    const root = guestTree('formats-guest');
    writeFileSync(join(root, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
    mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
    writeFileSync(
      join(root, 'var/lib/dpkg/status'),
      'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n',
    );
    const previous = join(root, '..', 'formats-previous.manifest.json');
    writeFileSync(
      previous,
      JSON.stringify({ image: 'old.vhd', packages: [{ name: 'hello', version: '2.10-2', architecture: 'amd64' }] }),
    );
    const reporter = new RecordingReporter();
    const host = new RecordingHost(reporter, scrubPlan(root), 0);
    const formats = ['vhd', 'qcow2', 'vmdk'] as const;
    const source = { uri: previous, display: previous, scheme: 'file' as const, location: previous };
    const result = await buildImage({
      spec: buildSpec({ format: 'vhd', formats: [...formats], previousManifest: source }),
      reporter,
      host,
      kvmUsable: false,
    });
    assert.match(
      reporter.text(),
      /^info: Building image test-image \(x86_64, bios\) as test-image-2026-01-01\.vhd, test-image-2026-01-01\.qcow2, test-image-2026-01-01\.vmdk in \/images$/m,
    );
    assert.equal(builtStem(reporter.text(), 'test-image'), 'test-image-2026-01-01');
    const stage = '/images/.test-image-2026-01-01.partial-XXXXXX/test-image-2026-01-01';
    const converts = host.commands().filter((command) => command.startsWith('qemu-img convert'));
    assert.deepEqual(converts, [
      `qemu-img convert -p -f raw -O vpc -o subformat=fixed,force_size=on ${stage}.raw ${stage}.vhd`,
      `qemu-img convert -p -f raw -O qcow2 ${stage}.raw ${stage}.qcow2`,
      `qemu-img convert -p -f raw -O vmdk -o subformat=streamOptimized ${stage}.raw ${stage}.vmdk`,
    ]);
    const name = (suffix: string): string => `/images/test-image-2026-01-01.${suffix}`;
    assert.deepEqual(
      host.fileOperations('publish').map(([, to]) => to),
      [
        ...formats.map(name),
        ...['manifest.json', 'packages', 'cdx.json', 'changes', 'metrics.json'].map(name),
        ...formats.map((format) => name(`${format}.sha256sum`)),
        name('SHA256SUMS'),
      ],
    );
    const sums = String(host.written.get(`${stage}.SHA256SUMS`))
      .trimEnd()
      .split('\n');
    assert.deepEqual(
      sums.map((line) => line.split('  ')[1]),
      [...formats, 'manifest.json', 'packages', 'cdx.json', 'changes', 'metrics.json'].map(
        (suffix) => `test-image-2026-01-01.${suffix}`,
      ),
    );
    assert.deepEqual(
      artifactsOf(result.artifacts, 'image').map((image) => [image.format, image.final]),
      formats.map((format) => [format, name(format)]),
    );
    assert.equal(firstImage(result.artifacts).final, name('vhd'));
    assert.equal(pathOf(result.artifacts, 'changes'), name('changes'));
    assert.deepEqual(result.changes?.upgraded, [
      { name: 'hello', architecture: 'amd64', from: '2.10-2', to: '2.10-3' },
    ]);
    assert.match(String(host.written.get(`${stage}.changes`)), /^Upgraded:\n {2}hello amd64 2\.10-2 -> 2\.10-3$/m);
    assert.deepEqual(host.leftovers(), []);
  });

  test('a step that fails unwinds everything created so far and names the step', async () => {
    const root = guestTree('build-fail-guest');
    const reporter = new RecordingReporter();
    const plan = scrubPlan(root);
    plan.answers?.unshift({
      match: /^guestfish --remote=\d+ -- -zerofree /,
      result: { exitCode: 1, lastLines: ['libguestfs: error: zerofree: cannot open'] },
    });
    const host = new RecordingHost(reporter, plan, 0);
    await assert.rejects(
      buildImage({ spec: buildSpec({ zeroFreeSpace: 'zerofree' }), reporter, host, kvmUsable: false }),
      (error: unknown) => {
        assert.ok(error instanceof BuildError);
        assert.equal(error.step, 'scrub');
        assert.match(
          String((error.cause as Error).message),
          /zerofree \/dev\/sda1 failed in the appliance: .*cannot open/,
        );
        return true;
      },
    );
    const commands = host.commands();
    assert.ok(commands.includes('kill -TERM 4000'), commands.join('\n'));
    const removed = host.fileOperations('remove').map(([path]) => path);
    assert.ok(removed.includes('/images/.test-image-2026-01-01.partial-XXXXXX'), removed.join(', '));
    assert.deepEqual(host.leftovers(), []);
  });

  test('a provisioner that fails fails the build in the step provision: its line, where it was written, its exit code and last lines; the later ones and the power-off never run, and the VM, its folder and keys are gone', async () => {
    const root = guestTree('build-provision-fail-guest');
    const reporter = new RecordingReporter();
    const plan = scrubPlan(root);
    plan.answers?.unshift({
      match: (argv) => argv[0] === 'ssh' && argv.at(-1) === "exec /bin/sh -c 'exit 3'",
      result: { exitCode: 3, lastLines: ['sh: the guest said why'] },
    });
    const host = new RecordingHost(reporter, plan, 0);
    const line = (text: string, n: number) => ({ text, where: `/etc/image-factory.conf:${n}: [test-image] provision` });
    const provision = {
      provisioners: [
        { ...line('shell true', 12), kind: 'shell' as const, command: 'true' },
        { ...line('shell exit 3', 13), kind: 'shell' as const, command: 'exit 3' },
        { ...line('shell echo never', 14), kind: 'shell' as const, command: 'echo never' },
      ],
      env: [],
      timeoutMs: 60_000,
    };
    await assert.rejects(buildImage({ spec: buildSpec({ provision }), reporter, host, kvmUsable: false }), (error) => {
      assert.ok(error instanceof BuildError);
      assert.equal(error.step, 'provision');
      assert.equal(
        (error.cause as Error).message,
        "/etc/image-factory.conf:13: [test-image] provision: the provisioner 'shell exit 3' exited with code 3; " +
          'its last lines:\n  | sh: the guest said why',
      );
      return true;
    });
    const commands = host.commands();
    assert.ok(commands.some((command) => /^ssh .*'exec \/bin\/sh -c true'$/.test(command)));
    assert.ok(!commands.some((command) => /echo never|\/bin\/sh -s/.test(command)), 'nothing ran after the failure');
    assert.ok(!commands.some((command) => /guestfish/.test(command)), 'the scrub never started');
    const removed = host.fileOperations('remove').map(([path]) => path);
    assert.ok(
      removed.some((path) => /\/\.provision-[^/]+$/.test(path)),
      removed.join(', '),
    );
    assert.deepEqual(host.leftovers(), []);
  });

  test('a boot-test-command that fails fails the build in the step boot-test, naming the command, where it was written, its exit code and last lines; every check ran, nothing is published and nothing is left', async () => {
    const root = guestTree('build-check-fail-guest');
    writeFileSync(join(root, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
    const reporter = new RecordingReporter();
    const plan = scrubPlan(root);
    plan.answers?.unshift({
      match: (argv) => argv[0] === 'ssh' && argv.at(-1) === "exec /bin/sh -c 'systemctl is-system-running'",
      result: { exitCode: 1, lastLines: ['degraded'] },
    });
    const host = new RecordingHost(reporter, plan, 0);
    const where = (n: number) => `/etc/image-factory.conf:${n}: [test-image] boot-test-command`;
    const bootTest = {
      ...buildSpec().bootTest,
      enabled: true,
      cloudInit: true,
      commands: [
        { text: 'systemctl is-system-running', where: where(20) },
        { text: 'test -e /etc/motd', where: where(21) },
      ],
    };
    await assert.rejects(buildImage({ spec: buildSpec({ bootTest }), reporter, host, kvmUsable: false }), (error) => {
      assert.ok(error instanceof BuildError);
      assert.equal(error.step, 'boot-test');
      assert.equal(
        (error.cause as Error).message,
        `the boot test's check 'systemctl is-system-running' (${where(20)}) exited with code 1; ` +
          'its last lines:\n  | degraded',
      );
      return true;
    });
    const ran = host.calls.flatMap((call) => (call.kind === 'run' && call.argv[0] === 'ssh' ? [call.argv.at(-1)] : []));
    assert.deepEqual(
      ran,
      ["exec /bin/sh -c 'systemctl is-system-running'", "exec /bin/sh -c 'test -e /etc/motd'"],
      'every check ran, in order',
    );
    assert.deepEqual(host.fileOperations('publish'), [], 'nothing published');
    assert.deepEqual(host.leftovers(), []);
  });

  test('a provisioned build: the step runs between install and scrub, and the metrics (valid against the schema) and the manifest hold each provisioner by its line, a secret masked', async () => {
    const root = guestTree('build-provisioned-guest');
    writeFileSync(join(root, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
    const reporter = new RecordingReporter();
    const host = new RecordingHost(reporter, scrubPlan(root), 0);
    const where = '/etc/image-factory.conf:12: [test-image] provision';
    const provision = {
      provisioners: [
        { text: 'shell echo hunter2-secret', where, kind: 'shell' as const, command: 'echo hunter2-secret' },
      ],
      env: [{ name: 'TOKEN', value: 'hunter2-secret', secret: true }],
      timeoutMs: 60_000,
    };
    await buildImage({ spec: buildSpec({ provision }), reporter, host, kvmUsable: false });
    assert.deepEqual(reporter.steps.slice(2, 5), ['install', 'provision', 'scrub']);
    const staged = (name: string): string =>
      String(host.written.get(`/images/.test-image-2026-01-01.partial-XXXXXX/test-image-2026-01-01.${name}`));
    const metrics = JSON.parse(staged('metrics.json')) as BuildMetrics;
    assert.deepEqual(metricsSchemaErrors(metrics), []);
    assert.deepEqual(
      metrics.provision?.provisioners.map((entry) => entry.provisioner),
      ['shell echo ***'],
    );
    assert.ok(metrics.steps.some((entry) => entry.step === 'provision'));
    const manifest = JSON.parse(staged('manifest.json')) as { inputs: Array<{ role: string; name: string }> };
    assert.deepEqual(
      manifest.inputs.filter((input) => input.role === 'provisioning').map((input) => input.name),
      ['shell echo ***', 'provision-env'],
    );
    for (const name of ['metrics.json', 'manifest.json', 'cdx.json'])
      assert.ok(!staged(name).includes('hunter2-secret'), `the secret is in the ${name}`);
  });

  test('free blocks the discard left holding data are written with zeros in the appliance, then read again as zeros', async () => {
    const root = guestTree('build-remedy-guest');
    const reporter = new RecordingReporter();
    const plan = scrubPlan(root);
    const built: { host?: RecordingHost } = {};
    // Blocks 150 and 300 of the stand-in's ext4 (partition at 1 MiB, 4 KiB blocks) hold a byte until zeros come.
    plan.readRange = (_path, offset, length) => {
      const bytes = Buffer.alloc(length);
      // Once a zeroing script ran (one with `dd if=/dev/zero`), the blocks read as zeros.
      const zeroed = (built.host?.commands() ?? []).some(
        (command) =>
          command.includes('-debug sh') &&
          Buffer.from(/echo (\S+) \|/.exec(command)?.[1] ?? '', 'base64').includes('dd if=/dev/zero'),
      );
      if (zeroed) return bytes;
      for (const block of [150, 300]) {
        const at = (1 << 20) + block * 4096 + 17 - offset;
        if (at >= 0 && at < length) bytes[at] = 0x2a;
      }
      return bytes;
    };
    const host = new RecordingHost(reporter, plan, 0);
    built.host = host;
    const result = await buildImage({ spec: buildSpec(), reporter, host, kvmUsable: false });
    const scripts = host
      .commands()
      .filter((command) => command.includes('-debug sh'))
      .map((command) => Buffer.from(/echo (\S+) \|/.exec(command)?.[1] ?? '', 'base64').toString('utf8'))
      .filter((script) => /^run /m.test(script));
    assert.equal(scripts.length, 2, 'one listing of the free space, one zeroing');
    // The disk by the serial libguestfs gave it: never the appliance's own, whatever the kernel named them.
    const sda1 = '\\/dev\\/disk\\/by-id\\/scsi-0QEMU_QEMU_HARDDISK_hd0-part1';
    assert.match(
      scripts[1],
      new RegExp(`dd if=/dev/zero of=${sda1} bs=4096 seek=150 count=1 conv=notrunc,nocreat,fsync`),
    );
    assert.match(
      scripts[1],
      new RegExp(`dd if=/dev/zero of=${sda1} bs=4096 seek=300 count=1 conv=notrunc,nocreat,fsync`),
    );
    assert.match(
      reporter.text(),
      /\/dev\/sda1 \(ext4\): 2 free blocks still held data after the discard: written with zeros/,
    );
    assert.match(reporter.text(), /\/dev\/sda1 \(ext4\): 0 non-zero free blocks/);
    assert.equal(firstImage(result.artifacts).final, '/images/test-image-2026-01-01.qcow2');
    assert.deepEqual(host.leftovers(), []);
  });

  test('free space that still does not read as zero after the scrub fails it, naming the file system and the count; nothing is published', async () => {
    const root = guestTree('build-leak-guest');
    const reporter = new RecordingReporter();
    const plan = scrubPlan(root);
    // The stand-in's ext4 has blocks 100-199 and 300 free; its partition starts at 1 MiB. Two of them hold a byte.
    plan.readRange = (_path, offset, length) => {
      const bytes = Buffer.alloc(length);
      for (const block of [150, 300]) {
        const at = (1 << 20) + block * 4096 + 17 - offset;
        if (at >= 0 && at < length) bytes[at] = 0x2a;
      }
      return bytes;
    };
    const host = new RecordingHost(reporter, plan, 0);
    await assert.rejects(buildImage({ spec: buildSpec(), reporter, host, kvmUsable: false }), (error: unknown) => {
      assert.ok(error instanceof BuildError);
      assert.equal(error.step, 'scrub');
      assert.match(
        String((error.cause as Error).message),
        /the scrub left data in free space, which could hold what it removed: \/dev\/sda1 \(ext4\): 2 non-zero free blocks \(the first at byte offsets 614400, 1228800 of the device\)\. Nothing is published\./,
      );
      return true;
    });
    assert.match(reporter.text(), /\/dev\/sda1 \(ext4\): 2 non-zero free blocks \(of 101 of 4096 bytes\)/);
    assert.deepEqual(host.fileOperations('publish'), []);
    assert.deepEqual(host.leftovers(), []);
  });
});
