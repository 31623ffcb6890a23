/**
 * npm run bench [-- --size 4G --data 1536M --keep 200M --runs 4]   (--help for the rest)
 *
 * Builds one generated disk image, then on identical copies runs side by side:
 *  (a) the original tool's post-install sequence as shell commands — mount,
 *      remove the installer logs, umount, zerofree, `qemu-img convert -O
 *      qcow2`, and a whole-file-in-memory SHA-256 in Python;
 *  (b) this project's scrubImage + convertImage + writeChecksum, in a node
 *      process of its own.
 * It prints each step's time (best and median of the runs), the totals and
 * their ratio, each side's peak memory, the checksum throughput against
 * `openssl dgst -sha256`, and checks that both results are equivalent. It
 * exits non-zero when they are not (a missed speed target is only printed).
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ZeroFreeSpace } from '../../src/config/image-spec.js';
import { parseBytes } from '../../src/common/units.js';
import { sha256File } from '../../src/pipeline/checksum.js';
import { INSTALLER_LOG_PATTERNS } from '../../src/pipeline/scrub.js';
import { kibAsMib, max, median, mib, min, percent, rate, ratio, seconds, table } from './lib/format.js';
import { BenchHost } from './lib/host.js';
import { generateImage, type GeneratedImage } from './lib/image.js';
import { GNU_TIME, output, run, stopAll, which, type Measured } from './lib/proc.js';
import { checkFreeSpace, compareTrees, diffTrees, treeOf } from './lib/verify.js';
import type { SideBInput, SideBResult } from './side-b.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const MIB = 1 << 20;
const TARGET_RATIO = 0.2;
const TARGET_MEMORY = 150 * MIB;
const TARGET_CHECKSUM = 0.9;
/** Set on Ctrl-C or SIGTERM: the signal handler cleans up and exits; main's errors are its consequences. */
let interrupted = false;

/** The tools the bench runs, and the Debian package of each (for CI's package list). */
const TOOLS: Array<[string, string]> = [
  ['sfdisk', 'fdisk'],
  ['losetup', 'mount'],
  ['mount', 'mount'],
  ['umount', 'mount'],
  ['fstrim', 'util-linux'],
  ['blkid', 'util-linux'],
  ['mkfs.ext4', 'e2fsprogs'],
  ['dumpe2fs', 'e2fsprogs'],
  ['zerofree', 'zerofree'],
  ['qemu-img', 'qemu-utils'],
  [GNU_TIME, 'time'],
  ['openssl', 'openssl'],
  ['python3', 'python3'],
  ['diff', 'diffutils'],
  ['find', 'findutils'],
  ['dd', 'coreutils'],
];

/** What the original does to hash an image: read it whole into memory. */
const PYTHON_SHA256 = 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())';

interface Options {
  size: number;
  data: number;
  keep: number;
  runs: number;
  dir: string;
  zeroFreeSpace: ZeroFreeSpace;
  warm: boolean;
  content: 'random' | 'system';
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '4G' },
      data: { type: 'string', default: '1536M' },
      keep: { type: 'string', default: '200M' },
      runs: { type: 'string', default: '4' },
      dir: { type: 'string', default: '/var/tmp' },
      'zero-free-space': { type: 'string', default: 'discard' },
      warm: { type: 'boolean', default: false },
      content: { type: 'string', default: 'random' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      [
        'usage: node build/test/bench/post-install.bench.js [--size 4G] [--data 1536M] [--keep 200M] [--runs 4]',
        '       [--dir /var/tmp] [--zero-free-space discard|zerofree|none] [--warm] [--content random|system]',
        '  --size             raw disk size',
        '  --data             incompressible data written and deleted (left in free space)',
        '  --keep             data kept as files',
        '  --runs             runs of each side, alternating which goes first (best and median are reported)',
        '  --dir              where the images go (needs about 3 × (data + keep) + 2 GiB free)',
        "  --zero-free-space  side (b)'s setting (default discard, the project's default)",
        "  --warm             leave the copies in the page cache (default: drop each file's cache before each side)",
        '  --content          random (kept files incompressible, the default) or system (copies of /usr files)',
      ].join('\n'),
    );
    process.exit(0);
  }
  const size = (name: 'size' | 'data' | 'keep'): number => {
    const bytes = parseBytes(values[name] as string);
    if (!bytes) throw new Error(`--${name} ${values[name]}: not a size (e.g. 4G, 1536M)`);
    return bytes;
  };
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs ${values.runs}: not a whole number ≥ 1`);
  const content = values.content as string;
  if (content !== 'random' && content !== 'system') throw new Error(`--content ${content}: use random or system`);
  const zero = values['zero-free-space'] as string;
  if (!['discard', 'zerofree', 'none'].includes(zero))
    throw new Error(`--zero-free-space ${zero}: use discard, zerofree or none`);
  return {
    size: size('size'),
    data: size('data'),
    keep: size('keep'),
    runs,
    dir: resolve(values.dir as string),
    zeroFreeSpace: zero as ZeroFreeSpace,
    warm: values.warm as boolean,
    content,
  };
}

interface Step {
  name: string;
  ms: number;
  maxRssKiB: number;
}

interface SideA {
  steps: Step[];
  scrub: number;
  convert: number;
  checksum: number;
  total: number;
  zerofree: number;
  digest: string;
  rawAllocated: number;
  qcow2Size: number;
}

interface SideB {
  result: SideBResult;
  external: Step[];
  total: number;
  rawAllocated: number;
  qcow2Size: number;
}

interface RunFiles {
  aRaw: string;
  bRaw: string;
  aQcow2: string;
  bQcow2: string;
  bChecksum: string;
}

const allocated = async (path: string): Promise<number> => (await stat(path)).blocks * 512;

/** Write out and drop a file's pages, so that each side starts from the disk as a fresh install would. */
async function dropCache(path: string): Promise<void> {
  await output(['sync', path]);
  await output(['dd', `if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
}

async function runSideA(bench: BenchHost, raw: string, qcow2: string, workDir: string, python: string): Promise<SideA> {
  const steps: Step[] = [];
  const step = async (name: string, argv: string[], cwd?: string): Promise<Measured> => {
    const result = await run(argv, { measureRss: true, cwd });
    steps.push({ name, ms: result.ms, maxRssKiB: result.maxRssKiB });
    return result;
  };
  const mountpoint = join(workDir, 'mnt-a');
  await mkdir(mountpoint, { recursive: true });

  const table = JSON.parse((await step('sfdisk --json', ['sfdisk', '--json', raw])).stdout) as {
    partitiontable: { partitions: Array<{ start: number; size: number }> };
  };
  const { start, size } = table.partitiontable.partitions[0];
  const loopEntry = bench.cleanup.register({ kind: 'loop', backingFile: raw });
  const loop = (
    await step('losetup', [
      'losetup',
      '--find',
      '--show',
      '--offset',
      String(start * 512),
      '--sizelimit',
      String(size * 512),
      raw,
    ])
  ).stdout.trim();
  const mountEntry = bench.cleanup.register({ kind: 'mount', path: mountpoint });
  await step('mount', ['mount', loop, mountpoint]);
  // The original's list, as shell globs.
  await step('rm installer logs', ['sh', '-c', `rm -rf -- ${INSTALLER_LOG_PATTERNS.join(' ')}`], mountpoint);
  await step('umount', ['umount', mountpoint]);
  bench.cleanup.forget(mountEntry);
  await step('zerofree', ['zerofree', loop]);
  await step('losetup -d', ['losetup', '--detach', loop]);
  bench.cleanup.forget(loopEntry);
  await step('qemu-img convert', ['qemu-img', 'convert', '-O', 'qcow2', raw, qcow2]);
  const hashed = await step('python3 sha256', [python, '-c', PYTHON_SHA256, qcow2]);

  const sum = (names: string[]): number =>
    steps.filter((s) => names.includes(s.name)).reduce((total, s) => total + s.ms, 0);
  const scrub = sum(['sfdisk --json', 'losetup', 'mount', 'rm installer logs', 'umount', 'zerofree', 'losetup -d']);
  const convert = sum(['qemu-img convert']);
  const checksum = sum(['python3 sha256']);
  return {
    steps,
    scrub,
    convert,
    checksum,
    total: scrub + convert + checksum,
    zerofree: sum(['zerofree']),
    digest: hashed.stdout.trim(),
    rawAllocated: await allocated(raw),
    qcow2Size: (await stat(qcow2)).size,
  };
}

/** Wrappers that record the peak RSS of every external command side (b) runs. */
async function makeWrappers(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of [
    'sfdisk',
    'losetup',
    'blkid',
    'mount',
    'umount',
    'rm',
    'fstrim',
    'zerofree',
    'qemu-img',
    'find',
    'cat',
    'sudo',
    'sync',
    'fsfreeze',
  ]) {
    const real = which(name);
    if (!real) continue;
    const script = `#!/bin/sh\nexec ${GNU_TIME} -a -o "$BENCH_RSS_LOG" -f "${name} %M %e" ${real} "$@"\n`;
    await writeFile(join(dir, name), script);
    await chmod(join(dir, name), 0o755);
  }
}

async function runSideB(
  raw: string,
  files: RunFiles,
  workDir: string,
  imageSize: number,
  zeroFreeSpace: ZeroFreeSpace,
  runIndex: number,
): Promise<SideB> {
  const log = join(workDir, `rss-b-${runIndex}.log`);
  await writeFile(log, '');
  const input: SideBInput = { raw, qcow2: files.bQcow2, checksum: files.bChecksum, imageSize, zeroFreeSpace };
  const child = await run([process.execPath, join(HERE, 'side-b.js'), JSON.stringify(input)], {
    allowFailure: true,
    env: {
      ...process.env,
      PATH: `${join(workDir, 'wrap')}:${process.env.PATH ?? ''}`,
      TMPDIR: join(workDir, 'tmp'),
      BENCH_RSS_LOG: log,
    },
  });
  let result: SideBResult;
  try {
    result = JSON.parse(child.stdout.trim().split('\n').pop() ?? '') as SideBResult;
  } catch {
    throw new Error(`side (b) printed no result (exit ${child.exitCode}): ${child.stderr.trim()}`);
  }
  if (!result.ok || result.cleanupFailures.length) {
    throw new Error(`side (b) failed: ${result.error ?? ''} ${result.cleanupFailures.join('; ')}`);
  }
  const external: Step[] = [];
  for (const line of (await readFile(log, 'utf8')).split('\n')) {
    const match = /^(\S+) (\d+) ([\d.]+)$/.exec(line.trim());
    if (match) external.push({ name: match[1], maxRssKiB: Number(match[2]), ms: Number(match[3]) * 1000 });
  }
  return {
    result,
    external,
    total: result.steps.scrub + result.steps.convert + result.steps.checksum,
    rawAllocated: await allocated(raw),
    qcow2Size: (await stat(files.bQcow2)).size,
  };
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

async function verify(
  bench: BenchHost,
  image: GeneratedImage,
  files: RunFiles,
  a: SideA,
  b: SideB,
  workDir: string,
): Promise<Check[]> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail: string): void => {
    checks.push({ name, ok, detail });
  };

  // The digests each side reported are those of its file.
  for (const [side, file, digest] of [
    ['(a)', files.aQcow2, a.digest],
    ['(b)', files.bQcow2, b.result.digest ?? ''],
  ] as const) {
    const reference = /= ?([0-9a-f]{64})\s*$/.exec(await output(['openssl', 'dgst', '-sha256', file]))?.[1];
    check(
      `${side} SHA-256 matches openssl dgst`,
      digest === reference,
      `${digest.slice(0, 16)}… vs ${reference?.slice(0, 16)}…`,
    );
  }
  const sumLine = (await readFile(files.bChecksum, 'utf8')).trim();
  check(
    '(b) checksum file reads "<sha256>  <name>"',
    sumLine === `${b.result.digest}  ${basename(files.bQcow2)}`,
    sumLine.slice(0, 40),
  );

  for (const [side, file] of [
    ['(a)', files.aQcow2],
    ['(b)', files.bQcow2],
  ] as const) {
    const checked = await run(['qemu-img', 'check', '-f', 'qcow2', file], { allowFailure: true });
    check(`${side} qemu-img check`, checked.exitCode === 0, checked.stdout.trim().split('\n').pop() ?? '');
  }

  const sizeGap = Math.abs(a.qcow2Size - b.qcow2Size) / Math.max(a.qcow2Size, b.qcow2Size);
  check(
    'qcow2 sizes within 1%',
    sizeGap <= 0.01,
    `(a) ${mib(a.qcow2Size)}, (b) ${mib(b.qcow2Size)}: ${percent(sizeGap)} apart`,
  );

  // Back to raw, then look inside: free space, then the files.
  const mounts: string[] = [];
  const release: Array<() => Promise<void>> = [];
  for (const [side, qcow2] of [
    ['a', files.aQcow2],
    ['b', files.bQcow2],
  ] as const) {
    const raw = join(workDir, `check-${side}.raw`);
    bench.cleanup.register({ kind: 'path', path: raw });
    await output(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', qcow2, raw]);
    const free = await checkFreeSpace(bench, raw, image.partitionOffset, image.partitionSize);
    check(
      `(${side}) free space reads as zeros`,
      free.nonZeroBlocks === 0 && free.freeBlocks > 0,
      `${free.nonZeroBlocks} of ${free.freeBlocks} free ${free.blockSize}-byte blocks non-zero`,
    );
    const loop = await bench.attachLoop(raw, image.partitionOffset, image.partitionSize, true);
    const mountpoint = join(workDir, `check-${side}`);
    const mounted = await bench.mount(loop.device, mountpoint, 'ro,noload');
    release.unshift(async () => {
      await bench.unmount(mounted);
      await bench.cleanup.release(loop.entry);
    });
    mounts.push(mountpoint);
    const problems = compareTrees(image.manifest, await treeOf(mountpoint));
    check(
      `(${side}) tree is the generated one minus the installer logs`,
      problems.length === 0,
      problems.length
        ? problems.slice(0, 5).join(', ')
        : `${image.manifest.size} entries, ${image.logs.length} log files gone`,
    );
  }
  const differences = await diffTrees(mounts[0], mounts[1]);
  check(
    '(a) and (b) trees identical (diff -r, modes, owners)',
    differences.length === 0,
    differences.slice(0, 5).join('; ') || 'no difference',
  );
  for (const undo of release) await undo();
  return checks;
}

interface Throughput {
  file: string;
  bytes: number;
  openssl: number[];
  node: number[];
}

/** openssl dgst -sha256 against sha256File on the same (cached) file, alternating. */
async function checksumThroughput(path: string, label: string, reps: number): Promise<Throughput> {
  const bytes = (await stat(path)).size;
  await output(['openssl', 'dgst', '-sha256', path]); // warm the page cache
  const result: Throughput = { file: label, bytes, openssl: [], node: [] };
  for (let i = 0; i < reps; i += 1) {
    result.openssl.push((await run(['openssl', 'dgst', '-sha256', path])).ms);
    const started = performance.now();
    await sha256File(path);
    result.node.push(performance.now() - started);
  }
  return result;
}

async function main(): Promise<number> {
  const options = parseOptions();
  const benchStarted = performance.now();
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (loop devices, mount, zerofree)');

  const missing = TOOLS.filter(([tool]) => !which(tool));
  if (missing.length) {
    const packages = [...new Set(missing.map(([, pkg]) => pkg))];
    console.error(`missing: ${missing.map(([tool]) => tool).join(', ')} — apt-get install -y ${packages.join(' ')}`);
    return 2;
  }
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : (which('python3') as string);

  const free = await statfs(options.dir);
  const meta = Math.ceil(options.size * 0.06);
  const needed = 3 * (options.data + options.keep + meta) + 4 * (options.keep + meta) + (1 << 30);
  const available = free.bavail * free.bsize;
  if (available < needed) {
    console.error(
      `${options.dir} has ${mib(available)} free; the bench needs about ${mib(needed)}. Use --dir elsewhere or smaller --data.`,
    );
    return 2;
  }

  const bench = new BenchHost();
  const workDir = await mkdtemp(join(options.dir, 'image-factory-bench-'));
  bench.cleanup.register({ kind: 'path', path: workDir });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: stopping and cleaning up…`);
    void (async () => {
      await stopAll();
      await finish(bench, workDir);
      process.exit(130);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await mkdir(join(workDir, 'tmp'));
    await makeWrappers(join(workDir, 'wrap'));

    const info = [
      `image: ${mib(options.size)} raw, msdos label, one ext4 partition from 1 MiB;`,
      `${mib(options.data)} incompressible written and deleted, ${mib(options.keep)} kept (${options.content} content); ${options.runs} run(s) of each side;`,
      `caches: ${options.warm ? 'warm (copies left in the page cache)' : "cold (each copy's pages written out and dropped before its side runs)"}; writes flushed (untimed) between sides;`,
      `(b) zero-free-space=${options.zeroFreeSpace}; work folder ${workDir} (${mib(available)} free)`,
    ];
    console.log(`post-install bench — ${info.join('\n  ')}`);
    console.log(
      'Timings on a shared machine are noisy: every figure is given as the best (min) and the median of the runs.\n',
    );

    const base = join(workDir, 'base.raw');
    const image = await generateImage(bench, base, join(workDir, 'mnt-gen'), options);
    const baseFree = await checkFreeSpace(bench, base, image.partitionOffset, image.partitionSize);
    console.log(
      `generated in ${seconds(image.ms)}: ${mib(await allocated(base))} on disk; checker self-test: ${baseFree.nonZeroBlocks} of ${baseFree.freeBlocks} free blocks are non-zero before zeroing (must be > 0)`,
    );
    if (baseFree.nonZeroBlocks === 0)
      throw new Error(
        'the free-space checker finds no non-zero free blocks in the unscrubbed image: it cannot be trusted',
      );

    const runsA: SideA[] = [];
    const runsB: SideB[] = [];
    let checks: Check[] = [];
    const throughput: Throughput[] = [];
    for (let i = 1; i <= options.runs; i += 1) {
      const files: RunFiles = {
        aRaw: join(workDir, 'a.raw'),
        bRaw: join(workDir, 'b.raw'),
        aQcow2: join(workDir, 'a.qcow2'),
        bQcow2: join(workDir, 'b.qcow2'),
        bChecksum: join(workDir, 'b.qcow2.sha256sum'),
      };
      for (const raw of [files.aRaw, files.bRaw]) await output(['cp', '--sparse=always', '--reflink=auto', base, raw]);
      const order = i % 2 === 1 ? ['a', 'b'] : ['b', 'a'];
      let a: SideA | undefined;
      let b: SideB | undefined;
      // Both copies on the disk before either side starts, and each side's
      // deferred writes flushed (untimed) before the other starts: otherwise
      // whichever runs first pays for the other's writeback.
      await output(['sync', '--file-system', workDir]);
      for (const side of order) {
        if (!options.warm) await dropCache(side === 'a' ? files.aRaw : files.bRaw);
        if (side === 'a') a = await runSideA(bench, files.aRaw, files.aQcow2, workDir, python);
        else b = await runSideB(files.bRaw, files, workDir, options.size, options.zeroFreeSpace, i);
        await output(['sync', '--file-system', workDir]);
      }
      if (!a || !b) throw new Error('a side did not run');
      runsA.push(a);
      runsB.push(b);
      console.log(
        `run ${i} (${order.join(' then ')}): (a) ${seconds(a.total)}, (b) ${seconds(b.total)} — ratio ${ratio(b.total / a.total)}; (b) zeroed by ${b.result.scrub?.zeroing}`,
      );
      if (i === 1) {
        checks = await verify(bench, image, files, a, b, workDir);
        const reps = Math.max(3, options.runs);
        throughput.push(await checksumThroughput(files.bQcow2, 'qcow2 (b)', reps));
        throughput.push(await checksumThroughput(files.aRaw, 'raw (a, after zerofree)', reps));
        for (const name of ['check-a.raw', 'check-b.raw']) await rm(join(workDir, name), { force: true });
      }
      for (const path of Object.values(files)) await rm(path, { force: true });
    }

    report(options, runsA, runsB, checks, throughput);
    const failed = checks.filter((c) => !c.ok);
    console.log(`\nbench took ${seconds(performance.now() - benchStarted)}`);
    if (failed.length) {
      console.log(`\nEQUIVALENCE FAILED: ${failed.map((c) => c.name).join('; ')}`);
      return 1;
    }
    return 0;
  } finally {
    if (!interrupted) await finish(bench, workDir);
  }
}

async function finish(bench: BenchHost, workDir: string): Promise<void> {
  const left = await bench.sweep(workDir).catch((error: Error) => [`sweep failed: ${error.message}`]);
  if (left.length) console.error(`cleaned up leftovers: ${left.join(', ')}`);
  const failures = await bench.cleanup.unwind();
  if (failures.length) console.error(`cleanup: ${failures.join('; ')}`);
}

function report(options: Options, runsA: SideA[], runsB: SideB[], checks: Check[], throughput: Throughput[]): void {
  const row = (name: string, a: number[], b: number[]): string[] => [
    name,
    a.length ? seconds(min(a)) : '',
    a.length ? seconds(median(a)) : '',
    b.length ? seconds(min(b)) : '',
    b.length ? seconds(median(b)) : '',
  ];
  const zeroName = options.zeroFreeSpace === 'zerofree' ? 'zerofree' : 'fstrim';
  console.log(
    `\n${table(
      [
        ['step', '(a) best', '(a) median', '(b) best', '(b) median'],
        row(
          'scrub: mount, remove logs, zero free space',
          runsA.map((r) => r.scrub),
          runsB.map((r) => r.result.steps.scrub),
        ),
        row(
          `  of which zerofree (a) / ${zeroName} (b)`,
          runsA.map((r) => r.zerofree),
          runsB.map((r) => r.result.appliance.zeroing),
        ),
        row(
          "  of which the libguestfs appliance's start (b)",
          [],
          runsB.map((r) => r.result.appliance.launch),
        ),
        row(
          'convert: qemu-img convert -O qcow2',
          runsA.map((r) => r.convert),
          runsB.map((r) => r.result.steps.convert),
        ),
        row(
          'checksum: SHA-256 of the qcow2',
          runsA.map((r) => r.checksum),
          runsB.map((r) => r.result.steps.checksum),
        ),
        row(
          'total',
          runsA.map((r) => r.total),
          runsB.map((r) => r.total),
        ),
      ],
      `Time per step — ${runsA.length} run(s) of each side; (a) original as shell commands, (b) this project's functions`,
    )}`,
  );
  const ratios = runsA.map((a, i) => runsB[i].total / a.total);
  const bestRatio = min(runsB.map((r) => r.total)) / min(runsA.map((r) => r.total));
  const medianRatio = median(runsB.map((r) => r.total)) / median(runsA.map((r) => r.total));
  console.log(
    `ratio (b)/(a): best ${ratio(bestRatio)}, median ${ratio(medianRatio)} (per run: ${ratios.map(ratio).join(', ')})`,
  );
  // The appliance keeps the guest's file systems away from the host's kernel: a fixed cost per build, a VM's
  // boot (seconds under KVM, tens of seconds under TCG), which (a), mounting them on the host, does not pay.
  const bWithoutLaunch = runsB.map((r) => r.total - r.result.appliance.launch);
  console.log(
    `ratio (b)/(a) without the appliance's start: best ${ratio(min(bWithoutLaunch) / min(runsA.map((r) => r.total)))}, median ${ratio(median(bWithoutLaunch) / median(runsA.map((r) => r.total)))}`,
  );

  // Peak memory: the largest of any run.
  const peaksA = new Map<string, number>();
  for (const r of runsA) for (const s of r.steps) peaksA.set(s.name, Math.max(peaksA.get(s.name) ?? 0, s.maxRssKiB));
  const peaksB = new Map<string, number>([['node (side-b process)', max(runsB.map((r) => r.result.maxRssKiB))]]);
  for (const r of runsB) for (const s of r.external) peaksB.set(s.name, Math.max(peaksB.get(s.name) ?? 0, s.maxRssKiB));
  const memoryRows = (peaks: Map<string, number>, side: string): string[][] =>
    [...peaks.entries()].sort((x, y) => y[1] - x[1]).map(([name, kib]) => [`${side} ${name}`, kibAsMib(kib)]);
  console.log(
    `\n${table(
      [['process', 'peak RSS'], ...memoryRows(peaksA, '(a)'), ...memoryRows(peaksB, '(b)')],
      'Peak memory (max over runs; external commands through GNU time, the node process by process.resourceUsage().maxRSS)',
    )}`,
  );
  console.log(
    "(b)'s libguestfs appliance is not in these figures: guestfish's server and its qemu run a VM with memory of its own (libguestfs's memsize), as (a)'s mounts use the host kernel's.",
  );
  const peakA = max([...peaksA.values()]) * 1024;
  const peakB = max([...peaksB.values()]) * 1024;

  const lastA = runsA[0];
  const lastB = runsB[0];
  console.log(
    `\n${table(
      [
        ['result (run 1)', '(a)', '(b)'],
        ['raw file on disk after zeroing', mib(lastA.rawAllocated), mib(lastB.rawAllocated)],
        ['qcow2 size', mib(lastA.qcow2Size), mib(lastB.qcow2Size)],
        ['zeroing', 'zerofree', lastB.result.scrub?.zeroing ?? '?'],
      ],
      'Results',
    )}`,
  );
  // The scrub's phases, by its own clock, and its commands to the appliance (each a round trip).
  const phaseNames = lastB.result.scrub?.phases.map((p) => p.name) ?? [];
  const phaseOf = (r: SideB, name: string) => r.result.scrub?.phases.find((p) => p.name === name);
  console.log(
    `\n${table(
      [
        ['scrub phase (b)', 'best', 'median', 'round trips (run 1)'],
        ...phaseNames.map((name) => [
          name,
          seconds(min(runsB.map((r) => (phaseOf(r, name)?.seconds ?? 0) * 1000))),
          seconds(median(runsB.map((r) => (phaseOf(r, name)?.seconds ?? 0) * 1000))),
          String(phaseOf(lastB, name)?.roundTrips ?? ''),
        ]),
        [
          'total round trips',
          '',
          '',
          String(lastB.result.scrub?.phases.reduce((sum, p) => sum + p.roundTrips, 0) ?? ''),
        ],
      ],
      "The scrub's phases (b)",
    )}`,
  );
  const warnings = [...new Set(runsB.flatMap((r) => r.result.warnings))];
  if (warnings.length) console.log(`(b) warnings: ${warnings.join(' | ')}`);

  const throughputRows = throughput.map((t) => {
    const best = min(t.openssl) / min(t.node);
    return [
      `${t.file}, ${mib(t.bytes)}`,
      rate(t.bytes, min(t.openssl)),
      rate(t.bytes, median(t.openssl)),
      rate(t.bytes, min(t.node)),
      rate(t.bytes, median(t.node)),
      percent(best),
      percent(median(t.openssl) / median(t.node)),
    ];
  });
  console.log(
    `\n${table(
      [
        ['SHA-256 of (page-cached)', 'openssl best', 'median', 'sha256File best', 'median', 'ratio best', 'median'],
        ...throughputRows,
      ],
      `Checksum throughput — openssl dgst -sha256 vs this project's sha256File, alternating, ${throughput[0]?.openssl.length ?? 0} times each`,
    )}`,
  );
  const checksumRatio = min(throughput.map((t) => min(t.openssl) / min(t.node)));

  console.log(
    `\n${table([['equivalence check', 'result', 'detail'], ...checks.map((c) => [c.name, c.ok ? 'ok' : 'FAILED', c.detail])], 'Equivalence of the two results (run 1)')}`,
  );

  const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
  console.log(
    `\n${table(
      [
        ['target', 'measured', 'verdict'],
        [
          `(b) total ≤ ${TARGET_RATIO} × (a) total (best; median)`,
          `${ratio(bestRatio)}; ${ratio(medianRatio)}`,
          `${verdict(bestRatio <= TARGET_RATIO)}; ${verdict(medianRatio <= TARGET_RATIO)}`,
        ],
        [
          `(b) peak memory < ${mib(TARGET_MEMORY)} (node and every command)`,
          mib(peakB),
          verdict(peakB < TARGET_MEMORY),
        ],
        ['(a) peak memory, for comparison', mib(peakA), ''],
        [
          `checksum ≥ ${percent(TARGET_CHECKSUM)} of openssl (best; worst file)`,
          percent(checksumRatio),
          verdict(checksumRatio >= TARGET_CHECKSUM),
        ],
        [
          'equivalence',
          `${checks.filter((c) => c.ok).length}/${checks.length} checks`,
          verdict(checks.every((c) => c.ok)),
        ],
      ],
      'Targets',
    )}`,
  );
}

try {
  process.exitCode = await main();
} catch (error) {
  if (!interrupted) {
    console.error(`bench failed: ${(error as Error).stack ?? error}`);
    process.exitCode = 1;
  }
}
