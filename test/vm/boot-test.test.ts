import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ensureDebianPackage, ROOTFS_FILE, serveRootfs, writeDebianFixtureConfig } from '../support/debian-fixture.js';
import { domainRunning, virtInstallDomain } from '../support/domain-state.js';
import { makeWorkDir, writeFixtureConfig } from '../support/fixture.js';
import { diskFind, inspectImage, readText } from '../support/image-files.js';
import { leftovers } from '../support/leftovers.js';
import { startRsyncDaemon } from '../support/rsync-daemon.js';
import { builtStem, runCli } from '../support/run-cli.js';

/** The first real-Debian build's manifest: the previous one of the build after it. */
let debianManifest: string | undefined;
/** What the first (unprovisioned) real-Debian image holds where a provisioning boot could leave a trace. */
let unprovisionedTraces: Record<string, string> | undefined;

/**
 * The paths a provisioning boot could leave a trace in (its key, a user, a
 * hostname, cloud-init's state, a machine ID, host keys, a lease, its
 * journal, cloud-init's network configuration): a file's text, a folder's
 * entries (recursively), or 'absent'.
 */
function traceSnapshot(root: string): Record<string, string> {
  const paths = [
    'etc/passwd',
    'etc/shadow',
    'etc/group',
    'etc/gshadow',
    'etc/sudoers.d',
    'root/.ssh',
    'etc/hostname',
    'etc/hosts',
    'etc/machine-id',
    'var/lib/cloud',
    'etc/ssh',
    'var/log/journal',
    'var/lib/dhcp',
    'etc/systemd/network',
    'etc/network',
    'etc/default/locale',
  ];
  return Object.fromEntries(
    paths.map((path) => {
      const full = join(root, path);
      if (!existsSync(full)) return [path, 'absent'];
      if (!statSync(full).isDirectory()) return [path, readFileSync(full, 'utf8')];
      return [path, `folder: ${filesUnder(full).sort().join(', ')}`];
    }),
  );
}

const workDirs: string[] = [];
function workDir(name: string): string {
  const dir = makeWorkDir(`boot-${name}`);
  workDirs.push(dir);
  return dir;
}

after(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

/** Every file under dir, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => join(entry.parentPath ?? entry.path, entry.name).slice(dir.length + 1));
}

/** What the boot test may leave behind besides what leftovers() looks for: its folder, overlay, seed, console log. */
function bootTestLeftovers(dir: string): string[] {
  return filesUnder(dir).filter((f) =>
    /boot-test|overlay\.qcow2|seed\.iso|(^|\/)user-data$|(^|\/)meta-data$|\.partial/.test(f),
  );
}

/** The domains this build made (the names its virt-install calls gave) that libvirt still has. */
function domainsLeft(stderr: string): string[] {
  const made = new Set([...stderr.matchAll(/virt-install .*?--name (\S+)/g)].map((match) => match[1]));
  assert.ok(made.size > 0, 'the build named no domain');
  return execFileSync('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => made.has(name));
}

/**
 * The boot test's expectation for the real-Debian image: the console shows
 * the fixture's first-boot line — a new machine ID (32 hex digits) and at
 * least one SSH host key — and a login prompt. Anchored at the start of the
 * text (the lookbehind), so a console without the line fails in linear time.
 * `$$` is a literal `$` in the configuration.
 */
const FIRST_BOOT_EXPECT =
  '(?<![\\s\\S])(?=[\\s\\S]*^fixture-firstboot: machine-id=[0-9a-f]{32} ssh-host-keys=[1-9])[\\s\\S]*\\blogin: *$$';

/**
 * The same, and the guest kernel saw Secure Boot on: the firmware told it so (x86 prints
 * `[0.000000] secureboot: Secure boot enabled`) and Debian's kernel locked itself down for it
 * (`Kernel is locked down from EFI Secure Boot; see man kernel_lockdown.7`). Only a boot chain the
 * enrolled keys accept (shim, signed GRUB, signed kernel) gets that far.
 */
const SECURE_BOOT_LINES = ['secureboot: Secure boot enabled', 'Kernel is locked down from EFI Secure Boot'];
const SECURE_BOOT_EXPECT = `(?<![\\s\\S])${SECURE_BOOT_LINES.map((line) => `(?=[\\s\\S]*${line})`).join('')}${FIRST_BOOT_EXPECT.replace('(?<![\\s\\S])', '')}`;

/**
 * The provisioning of the second real-Debian build: a file, a script that
 * installs tree from Debian's archive through the guest's network, a shell
 * line with a provision-env variable, a playbook that templates a file and
 * enables a unit; the boot test's commands check each. `$$` is a literal `$`.
 */
/** A provision-env secret of this run: never in the log, the published files or the image's bytes. */
const PROVISION_SECRET = `ifx-secret-${randomBytes(12).toString('hex')}`;

function provisioningKeys(dir: string): Record<string, string> {
  writeFileSync(join(dir, 'banner.txt'), 'banner from the host\n');
  writeFileSync(
    join(dir, 'install-tree.sh'),
    [
      '#!/bin/sh',
      'set -eu',
      // The fixture has no resolver of its own: qemu's, for this script only.
      'cp /etc/resolv.conf /run/resolv.conf.saved',
      "trap 'cat /run/resolv.conf.saved > /etc/resolv.conf' EXIT",
      'echo nameserver 10.0.2.3 > /etc/resolv.conf',
      'apt-get update -q',
      'DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends "$1"',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'provisioned.j2'), 'templated for {{ image_name }}\n');
  writeFileSync(
    join(dir, 'site.yml'),
    [
      '- hosts: all',
      '  gather_facts: false',
      '  tasks:',
      '    - ansible.builtin.template: { src: provisioned.j2, dest: /etc/provisioned-by-ansible, mode: "0644" }',
      '    - ansible.builtin.copy:',
      '        dest: /etc/systemd/system/image-factory-provisioned.service',
      '        content: "[Unit]\\nDescription=provisioned\\n[Service]\\nType=oneshot\\nExecStart=/bin/true\\n' +
        'RemainAfterExit=yes\\n[Install]\\nWantedBy=multi-user.target\\n"',
      '    - ansible.builtin.systemd: { name: image-factory-provisioned.service, enabled: true, daemon_reload: true }',
      '',
    ].join('\n'),
  );
  const lines = (items: string[]): string => items.join('\n    ');
  return {
    provision: lines([
      'file banner.txt /etc/image-factory-banner',
      'script install-tree.sh tree',
      `shell printf '%s\\n' "$$GREETING from provision-env" > /etc/provisioned-by-shell`,
      // A secret written to the disk and removed: the scrub's zeroing is what takes it out of the bytes.
      `shell printf '%s' "$$TOKEN" > /var/tmp/secret-scratch && sync && rm /var/tmp/secret-scratch`,
      'ansible site.yml -e image_name=debian-fixture',
    ]),
    'provision-env': lines(['GREETING=hello', `secret TOKEN=${PROVISION_SECRET}`]),
    'boot-test': 'yes',
    'boot-timeout': '8m',
    'boot-test-command': lines([
      'test "$$(cat /etc/image-factory-banner)" = "banner from the host"',
      "dpkg-query -W -f='$${Status}' tree | grep -qx 'install ok installed'",
      'grep -qx "hello from provision-env" /etc/provisioned-by-shell',
      'grep -qx "templated for debian-fixture" /etc/provisioned-by-ansible',
      'systemctl is-enabled image-factory-provisioned.service',
    ]),
  };
}

/** The provisioning and the boot test's checks, as the log tells them; their times to the test's diagnostics. */
function checkProvisioning(t: { diagnostic: (message: string) => void }, stderr: string): void {
  assert.match(stderr, /provision: pinned the guest's host keys from its console: /);
  assert.match(stderr, /'--qemu-commandline=-netdev user,id=ifxnet0,hostfwd=tcp:127\.0\.0\.1:\d+-:22'/);
  for (const kind of ['file', 'script', 'shell', 'ansible'])
    assert.match(stderr, new RegExp(`provisioner \\d \\(${kind}\\) done in \\d+\\.\\d s`));
  assert.match(stderr, /\[script\] .*Setting up tree /);
  assert.match(stderr, /provision: the VM powered off after /);
  assert.equal([...stderr.matchAll(/boot test: '.*' exited with code 0 after /g)].length, 5, stderr);
  assert.ok(stderr.indexOf('== provision done') < stderr.indexOf('== scrub:'), 'provision runs before the scrub');
  for (const line of stderr
    .split('\n')
    .filter((l) => /SSH answered after|provisioner \d \(|powered off after|== provision done|boot test: '/.test(l)))
    t.diagnostic(line.replace(/^.*?INFO: /, ''));
}

describe('the boot test', () => {
  test("a real Debian 12 image in Debian's cloud layout (GPT: BIOS boot, EFI system partition, root) installs and boots under UEFI Secure Boot (Debian's signed shim, GRUB and kernel) to a login prompt, cloud-init finished, before it is published", async (t) => {
    const server = await serveRootfs(t);
    const dir = workDir('debian');
    const { config, image } = writeDebianFixtureConfig(dir, {
      rootfsUrl: server.url,
      directives: { layout: 'hybrid' },
      keys: {
        'boot-test': 'yes',
        'boot-timeout': '8m',
        firmware: 'uefi-secure',
        'boot-test-expect': SECURE_BOOT_EXPECT,
      },
    });
    const started = Date.now();
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 0, run.stderr);
    t.diagnostic(`real-Debian build + boot test took ${seconds.toFixed(0)} s`);
    const stem = builtStem(run.stderr, image);
    // Where the time goes: the steps, the installer's phases (guest uptime), the boot.
    const installer = readFileSync(join(dir, `${stem}.console.log`), 'utf8').split(/\r?\n/);
    for (const line of [
      ...run.stderr.split('\n').filter((l) => /== [\w-]+ done after|boot test/.test(l)),
      ...installer.filter((l) =>
        /^fixture-debian: \[[\d.]+\] (partitioning|ext4|unpacking|system in place|grub-install|update-grub|done)/.test(
          l,
        ),
      ),
    ]) {
      t.diagnostic(line.replace(/^.*?INFO: /, ''));
    }
    const qcow2 = join(dir, `${stem}.qcow2`);

    assert.ok(server.requests.includes(new URL(server.url).pathname), 'the installer fetched the root file system');
    const firmware = 'UEFI (OVMF, Secure Boot on, Microsoft keys enrolled)';
    assert.ok(run.stderr.includes(`the installer's VM boots with ${firmware} firmware`), run.stderr);
    assert.ok(run.stderr.includes(`in a throw-away VM (tcg, ${firmware})`), run.stderr);
    assert.match(run.stderr, /firmware: +UEFI \(OVMF, Secure Boot on, Microsoft keys enrolled\)/);
    // The booted kernel saw Secure Boot on: the console showed what SECURE_BOOT_EXPECT requires.
    const shown = run.stderr.split('\n').find((l) => l.includes('boot test: the console showed /')) ?? '';
    for (const line of SECURE_BOOT_LINES) assert.ok(shown.includes(line), `${shown} requires '${line}'`);
    assert.match(run.stderr, /boot test: the console showed \/.*login.*\/ after /);
    // The booted clone made its own identity: a machine ID (the image's is empty) and SSH host keys
    // (the image has none), printed by the fixture's unit after cloud-init's ssh module ran.
    assert.match(
      run.stderr,
      /boot test: the console showed \/.*fixture-firstboot: machine-id=.*ssh-host-keys=.*\/ after /,
    );
    assert.match(run.stderr, /boot test: cloud-init finished after /);
    assert.match(
      run.stderr,
      /boot test passed: the image came up in \d+\.\d s \(cloud-init finished after \d+\.\d s\)/,
    );
    assert.match(run.stderr, /boot test: +came up in \d+\.\d s, cloud-init finished/);
    // The boot test ran before the image was published.
    assert.ok(
      run.stderr.indexOf('== boot-test done') < run.stderr.indexOf('== publish:'),
      'boot-test runs before publish',
    );

    // The image is untouched by the boot (it ran on an overlay): its checksum still holds.
    execFileSync('qemu-img', ['check', qcow2]);
    execFileSync('sha256sum', ['-c', `${stem}.qcow2.sha256sum`], { cwd: dir });
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', qcow2], { encoding: 'utf8' })) as {
      'backing-filename'?: string;
    };
    assert.equal(info['backing-filename'], undefined);
    const owner = statSync(qcow2);
    assert.deepEqual(
      [owner.uid, owner.gid],
      [process.getuid?.(), process.getgid?.()],
      'the image is still ours (libvirt does not hand back a backing file)',
    );
    const manifest = JSON.parse(readFileSync(join(dir, `${stem}.manifest.json`), 'utf8')) as {
      distribution: { id: string; release: string; name: string };
      kernel: string;
      packages: Array<{ name: string; version: string; architecture: string }>;
    };
    assert.deepEqual([manifest.distribution.id, manifest.distribution.release], ['debian', '12']);
    debianManifest = join(dir, `${stem}.manifest.json`);
    assert.match(manifest.kernel, /^6\.1\.0-\d+-(cloud-)?amd64$/);
    inspectImage(qcow2, (root) => {
      assert.match(readText(root, 'etc/os-release') ?? '', /Debian GNU\/Linux 12/);
      assert.ok(!existsSync(join(root, 'var/log/installer')), 'the installer logs were removed');
      assert.match(readText(root, 'etc/fstab') ?? '', /^UUID=[0-9a-f-]+\s+\/\s+ext4/m);
      assert.match(readText(root, 'etc/fstab') ?? '', /^UUID=[0-9A-F-]+\s+\/boot\/efi\s+vfat/m);
      assert.ok(existsSync(join(root, 'boot/grub/i386-pc/core.img')), 'GRUB for BIOS');
      assert.ok(existsSync(join(root, 'boot/grub/x86_64-efi')), 'GRUB for UEFI');
      assert.match(readText(root, 'boot/grub/grub.cfg') ?? '', /console=ttyS0/);
      // cloud-init ran on the overlay only: the image has no instance data.
      assert.ok(!existsSync(join(root, 'var/lib/cloud/instance')), 'cloud-init state leaked into the image');
      assert.equal(readText(root, 'etc/machine-id') ?? '', '');
      // Generalised: no host keys, no leases, no shell history, no random seed left for the clones to share.
      assert.deepEqual(
        (existsSync(join(root, 'etc/ssh')) ? readdirSync(join(root, 'etc/ssh')) : []).filter((name) =>
          name.startsWith('ssh_host_'),
        ),
        [],
      );
      assert.deepEqual(existsSync(join(root, 'var/lib/dhcp')) ? readdirSync(join(root, 'var/lib/dhcp')) : [], []);
      assert.ok(!existsSync(join(root, 'root/.bash_history')));
      assert.ok(!existsSync(join(root, 'var/lib/systemd/random-seed')));
      // The manifest lists what dpkg itself says is installed in the finished image.
      const installed = execFileSync(
        'dpkg-query',
        [
          `--admindir=${join(root, 'var/lib/dpkg')}`,
          '-W',
          '-f',
          '${db:Status-Abbrev}\t${Package} ${Version} ${Architecture}\n',
        ],
        { encoding: 'utf8' },
      )
        .split('\n')
        .filter((line) => line.startsWith('ii '))
        .map((line) => line.split('\t')[1])
        .sort();
      assert.deepEqual(
        manifest.packages.map((entry) => `${entry.name} ${entry.version} ${entry.architecture}`).sort(),
        installed,
      );
      assert.ok(installed.length > 100, `${installed.length} packages: not a real Debian system`);
      unprovisionedTraces = traceSnapshot(root);
    });
    // GPT as Debian's cloud images: root 1, BIOS boot 14, EFI system partition 15.
    inspectImage(
      qcow2,
      (root) => assert.ok(existsSync(join(root, 'etc/os-release'))),
      (partitions) => {
        assert.deepEqual(
          partitions.map((part) => [part.node.replace(/.*?(\d+)$/, '$1'), part.type]),
          [
            ['1', '0FC63DAF-8483-4772-8E79-3D69D8477DE4'],
            ['14', '21686148-6449-6E6F-744E-656564454649'],
            ['15', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'],
          ],
        );
        return partitions[0];
      },
    );
    // Debian's signed chain at the removable path of the ESP: shim as BOOTX64.EFI, the signed GRUB
    // beside it (the installer compared both with the packages' files). Read in libguestfs's
    // appliance (the host may have no vfat).
    const esp = execFileSync('virt-ls', ['--format=qcow2', '-a', qcow2, '-m', '/dev/sda15', '/EFI/BOOT'], {
      encoding: 'utf8',
      env: { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' },
    });
    assert.match(esp, /^BOOTX64\.EFI$/im);
    assert.match(esp, /^grubx64\.efi$/m);
    const sbom = readFileSync(join(dir, `${stem}.cdx.json`), 'utf8');
    assert.equal(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(sbom), null);
    assert.match(sbom, /"purl": "pkg:deb\/debian\/libc6@2\.36-[^"]*arch=amd64&distro=debian-12&upstream=glibc"/);
    execFileSync('sha256sum', ['-c', `${stem}.SHA256SUMS`], { cwd: dir });
    const table = run.stderr.slice(run.stderr.indexOf('Generalised: ')).split('\n').slice(0, 12).join('\n');
    assert.match(table, /^Generalised: /);
    t.diagnostic(table.replace(/\n/g, ' | '));
    t.diagnostic(
      `manifest: ${manifest.packages.length} packages, kernel ${manifest.kernel}, ${manifest.distribution.name}`,
    );
    assert.deepEqual(bootTestLeftovers(dir), []);
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test("built again with one package more (hello, installed by the new system's dpkg), provisioned (a file, a script that apt-get installs tree from Debian's archive, a shell line, an Ansible playbook) and the first build's manifest as previous-manifest: the boot test's commands find each provisioner's work, the changes name exactly those two packages, and the provisioning boot left no trace", async (t) => {
    assert.ok(debianManifest, 'the real-Debian build above ran first: its manifest is the previous one');
    const hello = ensureDebianPackage('hello');
    const version = execFileSync('dpkg-deb', ['-f', hello, 'Version'], { encoding: 'utf8' }).trim();
    const server = await serveRootfs(t, ROOTFS_FILE, [hello]);
    const dir = workDir('debian-again');
    const { config, image } = writeDebianFixtureConfig(dir, {
      rootfsUrl: server.url,
      directives: { deb: server.urls[basename(hello)] },
      keys: { 'previous-manifest': debianManifest, ...provisioningKeys(dir) },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    checkProvisioning(t, run.stderr);
    assert.ok(server.requests.includes(`/${basename(hello)}`), 'the installer fetched the package');
    const stem = builtStem(run.stderr, image);
    const changes = readFileSync(join(dir, `${stem}.changes`), 'utf8');
    t.diagnostic(changes.replace(/\n+/g, ' | '));
    const counts = /^Packages: (\d+) -> (\d+) \(2 added, 0 removed, 0 upgraded, 0 downgraded\)$/m.exec(changes);
    assert.ok(counts, changes);
    assert.equal(Number(counts[2]), Number(counts[1]) + 2);
    assert.ok(changes.includes(`\nPrevious manifest: ${debianManifest}\n`), changes);
    assert.match(
      changes.split('\n\n')[1],
      new RegExp(`^Added:\\n  hello amd64 ${version.replace(/[.+]/g, '\\$&')}\\n  tree amd64 \\S+\\n$$`),
      'exactly hello (the installer) and tree (the script) added',
    );
    assert.match(run.stderr, /Changes since \S+: 2 added, 0 removed, 0 upgraded, 0 downgraded\n.*Image size: /);
    const sbom = readFileSync(join(dir, `${stem}.cdx.json`), 'utf8');
    assert.match(sbom, /"purl": "pkg:deb\/debian\/tree@/, 'the SBOM lists the package the script installed');
    // The finished image's own dpkg database has it, as the manifest says.
    const { packages } = JSON.parse(readFileSync(join(dir, `${stem}.manifest.json`), 'utf8')) as {
      packages: Array<{ name: string; version: string }>;
    };
    assert.deepEqual(
      packages.filter((entry) => entry.name === 'hello').map((entry) => entry.version),
      [version],
    );
    inspectImage(join(dir, `${stem}.qcow2`), (root) => {
      const status = execFileSync(
        'dpkg-query',
        [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f', '${db:Status-Abbrev} ${Version}', 'hello'],
        { encoding: 'utf8' },
      );
      assert.equal(status.replace(/\s+/g, ' '), `ii ${version}`);
      // What the provisioners did is in the image; what the provisioning boot did is not.
      assert.equal(readText(root, 'etc/image-factory-banner'), 'banner from the host\n');
      // systemctl enable makes an absolute symlink: lstat it, for on the host it leads to the host's /etc.
      const wants = join(root, 'etc/systemd/system/multi-user.target.wants/image-factory-provisioned.service');
      assert.ok(lstatSync(wants, { throwIfNoEntry: false })?.isSymbolicLink(), 'the unit is enabled in the image');
      assert.ok(unprovisionedTraces, 'the first build recorded what an unprovisioned image holds');
      assert.deepEqual(traceSnapshot(root), unprovisionedTraces);
    });
    // Gone from the bytes, not only from the tree: the build's key (its comment, in cloud-init's copy of the
    // seed) and the secret the shell line wrote and removed. The banner shows the search reads this image.
    const found = diskFind(join(dir, `${stem}.qcow2`), [
      'banner from the host',
      PROVISION_SECRET,
      'image-factory-provision-',
    ]);
    assert.deepEqual(found, ['banner from the host']);
    assert.ok(!`${run.stdout}${run.stderr}`.includes(PROVISION_SECRET), 'the secret is masked in the output');
    for (const file of filesUnder(dir).filter((f) => basename(f).startsWith(stem) && !/\.(qcow2|raw)$/.test(f)))
      assert.ok(!readFileSync(join(dir, file)).includes(PROVISION_SECRET), `the secret is in ${file}`);
    execFileSync('sha256sum', ['-c', `${stem}.SHA256SUMS`], { cwd: dir });
    assert.deepEqual(leftovers(dir, stem), []);
    assert.deepEqual(bootTestLeftovers(dir), []);
    assert.deepEqual(
      filesUnder(dir).filter((f) => /\.provision-|id_ed25519|known_hosts|inventory\.ini|seed\.iso/.test(f)),
      [],
    );
    assert.deepEqual(domainsLeft(run.stderr), []);
  });

  test("an image that does not boot under UEFI (the small fixture's MBR disk, no EFI system partition) is stopped at boot-timeout and fails the build with the boot test's message, quoting the console's last screen; nothing is uploaded, published or left (domains, NVRAM)", async (t) => {
    const dir = workDir('noboot');
    const module = mkdtempSync(join(tmpdir(), 'boot-test-upload-'));
    t.after(() => rmSync(module, { recursive: true, force: true }));
    const daemon = await startRsyncDaemon(t, { images: { path: module } });
    // The small fixture writes a file system but no boot loader. What the test checks is the message and
    // the screen it quotes, not the limit: OVMF under TCG on a busy machine (load 6 on two cores) took
    // more than 30 s to draw anything, so the limit leaves it room.
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': 0 },
      keys: {
        'boot-test': 'yes',
        'boot-timeout': '3m',
        osinfo: 'debian11',
        upload_destinations: 'mirror',
        firmware: 'uefi',
      },
      extra: `[mirror]\nupload_type = rsync\nupload_target = ${daemon.url('images')}\n`,
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    const stem = builtStem(run.stderr, image);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /booting \S+ in a throw-away VM \(tcg, UEFI \(OVMF, Secure Boot off\)\)/);
    assert.match(
      run.stderr,
      /boot-test step failed: the boot test expected the console to show \/\\blogin: \*\$\/ and cloud-init's marker '.*', but the boot did not get there within 3m00s \(boot-timeout\), so the VM was stopped\. The console never showed \/\\blogin: \*\$\/\./,
    );
    // What the console last showed (the firmware finding nothing to boot) is quoted as a screen.
    assert.match(run.stderr, /The console's last screen:\n(.*\n)*.*(INFO|ERROR): +\| \S/);
    assert.doesNotMatch(run.stderr, /== upload:/);
    assert.deepEqual(readdirSync(module), [], 'the rsync module received nothing');
    assert.doesNotMatch(readFileSync(daemon.logFile, 'utf8'), /transfer /);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith(stem) && /\.(qcow2|raw|sha256sum)$/.test(f)),
      [],
      'nothing published',
    );
    assert.deepEqual(domainsLeft(run.stderr), []);
    assert.deepEqual(bootTestLeftovers(dir), []);
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test("provisioning an image without cloud-init or sshd (the small fixture, under UEFI) fails in the provision step when no host keys appeared within provision-timeout, quoting the console's last screen; nothing is left (domain, NVRAM, seed, keys, the forwarded port)", async () => {
    const dir = workDir('noprovision');
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': 0 },
      keys: { osinfo: 'debian11', firmware: 'uefi', provision: 'shell false', 'provision-timeout': '1m' },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    const stem = builtStem(run.stderr, image);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /SSH through 127\.0\.0\.1:(\d+) only, host key pinned from the console; 1 provisioner/);
    assert.match(
      run.stderr,
      /provision step failed: provision: the VM did not get as far as cloud-init printing its SSH host keys and finishing within 1m00s \(provision-timeout\)/,
    );
    assert.match(run.stderr, /The console's last screen:\n/);
    assert.doesNotMatch(run.stderr, /provisioner 1\/1|== scrub:/);
    const port = /SSH through 127\.0\.0\.1:(\d+) only/.exec(run.stderr)?.[1];
    const listening = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
    assert.equal(listening.trim(), '', `nothing listens on the forwarded port ${port}`);
    assert.deepEqual(domainsLeft(run.stderr), []);
    assert.deepEqual(
      filesUnder(dir).filter((f) => /\.provision-|id_ed25519|known_hosts|inventory\.ini|seed\.iso/.test(f)),
      [],
    );
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('SIGTERM during a UEFI boot test stops the VM and removes everything, its NVRAM too', async () => {
    const dir = workDir('sigterm');
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': 0 },
      keys: { 'boot-test': 'yes', 'boot-timeout': '5m', osinfo: 'debian11', firmware: 'uefi' },
    });
    let log = '';
    let domain: string | undefined;
    let sent = false;
    let nvramWhileBooting: string[] = [];
    const run = await runCli([image], {
      cwd: dir,
      env: { IMAGE_FACTORY_CONFIG: config },
      onStderr: (text, child) => {
        log += text;
        if (domain) return;
        // Whenever the build gets there (the scrub before it takes long on a busy machine): once the
        // boot test's VM runs, its NVRAM is there, and the build is stopped.
        domain = virtInstallDomain(log, /virt-install .*?--name (\S+-boot-test-\S+)/);
        if (!domain) return;
        void domainRunning(domain, () => child.exitCode !== null || child.signalCode !== null).then((running) => {
          if (!running) return;
          nvramWhileBooting = readdirSync('/var/lib/libvirt/qemu/nvram').filter((name) => name.startsWith(image));
          sent = child.kill('SIGTERM');
        });
      },
    });
    const stem = builtStem(run.stderr, image);
    assert.ok(sent, `the boot test's VM was never seen running:\n${run.stderr}`);
    assert.equal(run.code, 143, run.stderr);
    assert.equal(nvramWhileBooting.length, 1, `the boot-test VM's NVRAM: ${nvramWhileBooting.join(', ')}`);
    assert.match(run.stderr, /SIGTERM received: stopping the build and cleaning up/);
    assert.match(run.stderr, /== boot-test FAILED/);
    assert.match(run.stderr, /interrupted by SIGTERM; everything the build created was removed/);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith(stem) && /\.(qcow2|raw|sha256sum)$/.test(f)),
      [],
    );
    assert.deepEqual(bootTestLeftovers(dir), []);
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test("a dry run prints the boot test's commands and runs none", async () => {
    const dir = workDir('dry');
    const { config, image } = writeFixtureConfig(dir, { keys: { 'boot-test': 'yes', osinfo: 'debian11' } });
    const run = await runCli([image, '--dry-run'], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /Calling qemu-img create -q -f qcow2 -F qcow2 -b \S+\.qcow2 \S+\/\.boot-test-XXXXXX\/overlay\.qcow2/,
    );
    assert.match(run.stderr, /Calling xorriso -as mkisofs .*-volid cidata/);
    assert.match(
      run.stderr,
      /Calling virt-install .*--import --transient .*--network user,model=virtio --graphics none --console pty,target_type=serial,log\.file=/,
    );
    assert.match(run.stderr, /Calling virsh -c qemu:\/\/\/system destroy \S+-boot-test-XXXXXX\n/);
    assert.deepEqual(
      filesUnder(dir).filter((f) => !/image-factory\.conf|answer\.cfg/.test(f)),
      [],
    );
  });
});
