/**
 * An aarch64 image built end to end on this x86_64 host under TCG: the arm64
 * fixture installer (test/fixture, built from Debian's arm64 packages) writes
 * GPT + ESP + root with a standalone GRUB, the scrub, zeroing, qcow2 and
 * checksum follow, and the boot test boots the image under AArch64 UEFI to the
 * fixture system's login prompt. Nothing is left: no domain, no NVRAM.
 *
 * The formats are `vhd, qcow2`, as for Azure (its Arm64 VMs take fixed VHDs) and a
 * qcow2 beside it: the boot test boots the first, the VHD, which only a footer tells
 * from a raw disk.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ensureArm64FixtureInstaller, makeWorkDir, writeImageConfig } from '../support/fixture.js';
import { inspectImage, readText } from '../support/image-files.js';
import { leftovers } from '../support/leftovers.js';
import { builtStem, runCli } from '../support/run-cli.js';

/** The ESP's EFI/BOOT listing and fixture/grub.cfg, read with mtools from the image's first partition. */
function espFiles(qcow2: string): { list: string; grubCfg: string } {
  const scratch = mkdtempSync(join(tmpdir(), 'esp-'));
  try {
    const raw = join(scratch, 'disk.raw');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, raw]);
    const table = JSON.parse(execFileSync('sfdisk', ['--json', raw], { encoding: 'utf8' })) as {
      partitiontable: { label: string; partitions: Array<{ start: number; type: string }> };
    };
    assert.equal(table.partitiontable.label, 'gpt');
    const part = table.partitiontable.partitions[0];
    assert.equal(part.type, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'the first partition is the EFI system partition');
    const image = `${raw}@@${part.start * 512}`;
    return {
      list: execFileSync('mdir', ['-i', image, '::/EFI/BOOT'], { encoding: 'utf8' }),
      grubCfg: execFileSync('mtype', ['-i', image, '::/fixture/grub.cfg'], { encoding: 'utf8' }),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const workDirs: string[] = [];
after(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

describe('an aarch64 build on an x86_64 host', () => {
  test('installs, scrubs, zeroes, converts, checksums and boot-tests an arm64 fixture system under AArch64 UEFI, leaving nothing behind', async (t) => {
    const fixture = ensureArm64FixtureInstaller();
    const dir = makeWorkDir('arm64');
    workDirs.push(dir);
    const image = 'fx-arm64';
    const answer = join(dir, 'answer.cfg');
    execFileSync('tee', [answer], {
      input: '# fixture: firmware=uefi data-mb=32\n',
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    const config = writeImageConfig(dir, image, {
      arch: 'aarch64',
      linux: `${fixture}/vmlinuz`,
      initrd: `file://${fixture}/initrd.gz`,
      preseed: answer,
      append: 'console=ttyAMA0',
      ram: '1G',
      'image-size': '1G',
      accelerator: 'auto',
      osinfo: 'linux2022',
      format: 'vhd, qcow2',
      cache_dir: join(dir, 'cache'),
      'install-timeout': '10m',
      'boot-test': 'yes',
      'boot-timeout': '5m',
      'boot-test-cloud-init': 'no',
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    // The steps' times, for the record (npm run bench compares them; nothing here depends on them).
    for (const line of run.stderr.match(/== [a-z-]+ done after .*/g) ?? []) t.diagnostic(line);

    // The architecture is in every file name; KVM was not used, and the log says why.
    const stem = builtStem(run.stderr, image);
    assert.match(stem, new RegExp(`^${image}-aarch64-\\d{4}-\\d\\d-\\d\\d$`));
    const qcow2 = join(dir, `${stem}.qcow2`);
    assert.match(
      run.stderr,
      /this host is x86_64 and the image is aarch64: KVM runs only guests of the host's architecture/,
    );
    assert.match(run.stderr, /Calling virt-install .* --arch aarch64 --machine virt --cpu cortex-a57 --boot uefi,/);
    const vhd = join(dir, `${stem}.vhd`);
    execFileSync('qemu-img', ['check', qcow2]);
    execFileSync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'vpc', qcow2, vhd]);
    for (const format of ['vhd', 'qcow2']) {
      execFileSync('sha256sum', ['-c', `${stem}.${format}.sha256sum`], { cwd: dir });
    }
    execFileSync('sha256sum', ['-c', `${stem}.SHA256SUMS`], { cwd: dir });
    assert.match(readFileSync(join(dir, `${stem}.console.log`), 'utf8'), /fixture-installer: done/);
    // The boot test saw the installed system's prompt, after GRUB on the ESP loaded it.
    // The boot test booted the first format, the VHD, through an overlay that names its format.
    assert.match(run.stderr, /Calling qemu-img create -q -f qcow2 -F vpc -b \S+\/fx-arm64-aarch64-[\d-]+\.vhd /);
    assert.match(run.stderr, /booting fx-arm64-aarch64-[\d-]+\.vhd in a throw-away VM \(tcg, UEFI/);
    assert.match(run.stderr, /boot test passed/);

    // The ESP (vfat, which this host's kernel may not mount): read with mtools.
    const esp = espFiles(qcow2);
    assert.match(esp.list, /BOOTAA64\s+EFI/, 'the removable-media boot loader is on the ESP');
    assert.match(esp.grubCfg, /console=ttyAMA0 fixture\.boot=1 fixture\.root=/);
    inspectImage(
      qcow2,
      (root) => {
        assert.match(readText(root, 'etc/os-release') ?? '', /Fixture Linux/);
        assert.ok(!existsSync(join(root, 'var/log/installer')), 'the installer logs are removed');
        assert.equal(readText(root, 'etc/machine-id'), '', 'generalised');
        assert.match(readText(root, 'etc/fstab') ?? '', /\/boot\/efi vfat/);
      },
      (partitions) => partitions[1],
    );
    assert.deepEqual(leftovers(dir, stem), []);
  });
});
