/**
 * node build/test/bench/layout-scrub.bench.js [--size 1G] [--data 256M]   (part of npm run bench)
 *
 * The scrub's time after the install, in the libguestfs appliance, on two
 * layouts of the same disk size with the same garbage written and deleted:
 * one ext4 partition, and /boot (ext4) plus an LVM volume group holding an
 * XFS root. It prints the appliance's launch, the whole scrub, and the
 * throughput per byte of disk of each, so the two can be compared.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseBytes } from '../../src/common/units.js';
import { SystemHost } from '../../src/host/system-host.js';
import type { BuildContext } from '../../src/context/build-context.js';
import { CleanupStack } from '../../src/pipeline/resources.js';
import { scrubImage } from '../../src/pipeline/scrub.js';
import { testSpec } from '../support/build-context.js';
import { QuietReporter } from './lib/host.js';

const env = { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' };

/** Populate a disk: the system's files, fstab by UUID, garbage written and deleted on each file system. */
function populate(disk: string, mounts: Array<[string, string]>, dataBytes: number): void {
  const uuid = (device: string): string =>
    execFileSync('guestfish', ['--ro', '--format=raw', '-a', disk, 'run', ':', 'vfs-uuid', device], {
      encoding: 'utf8',
      env,
    }).trim();
  const fstab = mounts.map(([device, at]) => `UUID=${uuid(device)} ${at} auto defaults 0 0`).join('\\n');
  const share = Math.floor(dataBytes / mounts.length);
  const script = [
    'run',
    ...mounts.flatMap(([device, at]) =>
      at === '/' ? [`mount ${device} /`] : [`mkdir-p ${at}`, `mount ${device} ${at}`],
    ),
    'mkdir-p /etc',
    'mkdir-p /usr/bin',
    'mkdir-p /bin',
    'mkdir-p /var/log/installer',
    'write /etc/os-release "ID=bench\\nPRETTY_NAME=\\"Bench Linux\\"\\n"',
    `write /etc/fstab "${fstab}\\n"`,
    'write /var/log/installer/syslog "installer log\\n"',
    ...mounts.flatMap(([, at]) => [
      `fill 90 ${share} ${at.replace(/\/$/, '')}/garbage`,
      `rm ${at.replace(/\/$/, '')}/garbage`,
    ]),
    'umount-all',
  ].join('\n');
  execFileSync('guestfish', ['--format=raw', '-a', disk], { input: script, env, stdio: ['pipe', 'ignore', 'inherit'] });
}

async function timeScrub(disk: string): Promise<{ launch: number; total: number; zeroing: string; found: number }> {
  const reporter = new QuietReporter();
  let launched = 0;
  const started = performance.now();
  const info = reporter.info.bind(reporter);
  reporter.info = (message: string) => {
    info(message);
    if (message.startsWith('Installed system') && !launched) launched = performance.now() - started;
  };
  const host = new SystemHost(reporter);
  const ctx: BuildContext = {
    spec: testSpec({ outputDir: tmpdir(), zeroFreeSpace: 'discard', generalize: 'yes' }),
    host,
    accelerator: 'tcg',
    reporter,
    cleanup: new CleanupStack(host),
  };
  try {
    const result = await scrubImage(ctx, disk);
    return {
      launch: launched,
      total: performance.now() - started,
      zeroing: result.zeroing,
      found: result.layout.filesystems.length,
    };
  } finally {
    await ctx.cleanup.unwind();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { size: { type: 'string' }, data: { type: 'string' } } });
  const size = parseBytes(values.size ?? '1G') ?? 1 << 30;
  const data = parseBytes(values.data ?? '256M') ?? 256 << 20;
  const dir = mkdtempSync(join(tmpdir(), 'image-factory-bench-layout-'));
  const mb = (bytes: number): string => `${Math.round(bytes / (1 << 20))}M`;
  try {
    const single = join(dir, 'single.raw');
    const multi = join(dir, 'multi.raw');
    execFileSync('guestfish', ['-N', `${single}=fs:ext4:${mb(size)}`, 'exit'], { env });
    populate(single, [['/dev/sda1', '/']], data);
    execFileSync('guestfish', ['-N', `${multi}=bootrootlv:/dev/VG/LV:ext4:xfs:${mb(size)}:256M`, 'exit'], { env });
    populate(
      multi,
      [
        ['/dev/VG/LV', '/'],
        ['/dev/sda1', '/boot'],
      ],
      data,
    );
    console.log(`layout scrub bench — ${mb(size)} raw disks, ${mb(data)} of garbage written and deleted on each`);
    console.log(
      'layout                         | file systems | appliance up + mounted | whole scrub | MiB of disk / s',
    );
    for (const [name, disk] of [
      ['one ext4 partition', single],
      ['/boot ext4 + LVM (XFS root)', multi],
    ]) {
      const t = await timeScrub(disk);
      const perSecond = size / (1 << 20) / (t.total / 1000);
      console.log(
        `${name.padEnd(30)} | ${String(t.found).padEnd(12)} | ${(t.launch / 1000).toFixed(1).padStart(20)} s | ${(t.total / 1000).toFixed(1).padStart(9)} s | ${perSecond.toFixed(1)} (${t.zeroing})`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
