/**
 * npm run build && node build/test/bench/convert-flags.bench.js \
 *   [--size 4G --data 1536M --keep 200M --reps 3 --content random|system]
 *
 * Which `qemu-img convert` invocation is fastest on this host: out-of-order
 * writes (-W) or not, 4/8/16 coroutines (-m; 8 is qemu-img's default), and
 * qcow2 compression zlib against zstd (sizes and times). Runs on the
 * post-install bench's image in both of the forms a convert sees:
 *   discarded — logs removed, `sync`, `fstrim` (sparse: what this project converts);
 *   zerofreed — logs removed, `zerofree` (dense: what the original converts).
 * Each variant runs --reps times, interleaved; best and median are printed.
 * Uncompressed variants run from a warm and from a cold page cache.
 * Every output is checked against its source with `qemu-img compare` once.
 */
import { mkdtemp, rm, stat, statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseBytes } from '../../src/common/units.js';
import { INSTALLER_LOG_PATTERNS } from '../../src/pipeline/scrub.js';
import { median, mib, min, seconds, table } from './lib/format.js';
import { BenchHost } from './lib/host.js';
import { generateImage, type GeneratedImage } from './lib/image.js';
import { output, run, stopAll } from './lib/proc.js';

interface Variant {
  name: string;
  flags: string[];
  compressed: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'plain (-m 8 default)', flags: [], compressed: false },
  { name: '-m 4', flags: ['-m', '4'], compressed: false },
  { name: '-m 16', flags: ['-m', '16'], compressed: false },
  { name: '-W', flags: ['-W'], compressed: false },
  { name: '-W -m 4', flags: ['-W', '-m', '4'], compressed: false },
  { name: '-W -m 16', flags: ['-W', '-m', '16'], compressed: false },
  { name: '-c zlib', flags: ['-c', '-o', 'compression_type=zlib'], compressed: true },
  { name: '-c zlib -W', flags: ['-W', '-c', '-o', 'compression_type=zlib'], compressed: true },
  { name: '-c zstd', flags: ['-c', '-o', 'compression_type=zstd'], compressed: true },
  { name: '-c zstd -W', flags: ['-W', '-c', '-o', 'compression_type=zstd'], compressed: true },
];

interface Sample {
  ms: number;
  size: number;
  cold: boolean;
}

async function prepare(
  bench: BenchHost,
  image: GeneratedImage,
  target: string,
  how: 'discarded' | 'zerofreed',
  workDir: string,
): Promise<void> {
  await output(['cp', '--sparse=always', image.path, target]);
  const loop = await bench.attachLoop(target, image.partitionOffset, image.partitionSize);
  const mounted = await bench.mount(loop.device, join(workDir, `mnt-${how}`));
  const mountpoint = join(workDir, `mnt-${how}`);
  await output(['sh', '-c', `rm -rf -- ${INSTALLER_LOG_PATTERNS.join(' ')}`], { cwd: mountpoint });
  if (how === 'discarded') {
    // ext4 trims only frees that are committed: sync first, or the just-removed logs stay.
    await output(['sync', '--file-system', mountpoint]);
    await output(['fstrim', mountpoint]);
  }
  await bench.unmount(mounted);
  if (how === 'zerofreed') await output(['zerofree', loop.device]);
  await bench.cleanup.release(loop.entry);
  await output(['sync', target]);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '4G' },
      data: { type: 'string', default: '1536M' },
      keep: { type: 'string', default: '200M' },
      reps: { type: 'string', default: '3' },
      dir: { type: 'string', default: '/var/tmp' },
      content: { type: 'string', default: 'random' },
      'warm-only': { type: 'boolean', default: false },
      'no-compare': { type: 'boolean', default: false },
    },
  });
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (loop devices, mount, zerofree)');
  const bytes = (name: 'size' | 'data' | 'keep'): number => {
    const value = parseBytes(values[name] as string);
    if (!value) throw new Error(`--${name} ${values[name]}: not a size`);
    return value;
  };
  const layout = {
    size: bytes('size'),
    data: bytes('data'),
    keep: bytes('keep'),
    content: values.content as 'random' | 'system',
  };
  const reps = Number(values.reps);
  const dir = resolve(values.dir as string);
  const free = await statfs(dir);
  if (free.bavail * free.bsize < 3 * (layout.data + layout.keep) + 3 * layout.size * 0.06 + (2 << 30)) {
    throw new Error(`${dir} has too little free space for the bench`);
  }

  const bench = new BenchHost();
  const workDir = await mkdtemp(join(dir, 'image-factory-bench-'));
  bench.cleanup.register({ kind: 'path', path: workDir });
  const finish = async (): Promise<void> => {
    await bench.sweep(workDir).catch(() => []);
    const failures = await bench.cleanup.unwind();
    if (failures.length) console.error(`cleanup: ${failures.join('; ')}`);
  };
  process.once(
    'SIGINT',
    () =>
      void stopAll()
        .then(finish)
        .then(() => process.exit(130)),
  );
  try {
    const qemuVersion = (await output(['qemu-img', '--version'])).split('\n')[0];
    console.log(
      `convert-flags bench — ${qemuVersion}; ${mib(layout.size)} disk, ${mib(layout.data)} deleted, ${mib(layout.keep)} kept (${layout.content} content); ${reps} rep(s)`,
    );
    const image = await generateImage(bench, join(workDir, 'base.raw'), join(workDir, 'mnt-gen'), layout);
    const sources: Array<{ name: 'discarded' | 'zerofreed'; path: string }> = [];
    for (const how of ['discarded', 'zerofreed'] as const) {
      const path = join(workDir, `${how}.raw`);
      await prepare(bench, image, path, how, workDir);
      sources.push({ name: how, path });
      console.log(`${how}.raw: ${mib((await stat(path)).blocks * 512)} on disk`);
    }
    await rm(image.path);

    const samples = new Map<string, Sample[]>();
    const problems: string[] = [];
    const out = join(workDir, 'out.qcow2');
    for (let rep = 0; rep < reps; rep += 1) {
      for (const source of sources) {
        // From a warm page cache, then (uncompressed only) from a cold one, as the disk is read after an install.
        for (const cold of values['warm-only'] ? [false] : [false, true]) {
          if (!cold) await output(['dd', `if=${source.path}`, 'of=/dev/null', 'bs=4M', 'status=none']);
          for (const variant of VARIANTS) {
            if (cold && variant.compressed) continue;
            if (cold) await output(['dd', `if=${source.path}`, 'iflag=nocache', 'count=0', 'status=none']);
            const argv = ['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', ...variant.flags, source.path, out];
            const measured = await run(argv);
            const size = (await stat(out)).size;
            const key = `${source.name}\t${variant.name}\t${cold ? 'cold' : 'warm'}`;
            samples.set(key, [...(samples.get(key) ?? []), { ms: measured.ms, size, cold }]);
            if (rep === 0 && !cold && !values['no-compare']) {
              const compared = await run(['qemu-img', 'compare', '-f', 'raw', '-F', 'qcow2', source.path, out], {
                allowFailure: true,
              });
              if (compared.exitCode !== 0)
                problems.push(`${key.replaceAll('\t', ' ')}: ${compared.stdout.trim()} ${compared.stderr.trim()}`);
            }
            await rm(out);
            await output(['sync', '--file-system', workDir]);
          }
        }
      }
      console.log(`rep ${rep + 1} of ${reps} done`);
    }

    for (const source of sources) {
      const rows: string[][] = [['variant', 'cache', 'best', 'median', 'qcow2 size', 'vs plain (best)']];
      const plain = (cache: string): number =>
        min((samples.get(`${source.name}\tplain (-m 8 default)\t${cache}`) ?? []).map((s) => s.ms));
      for (const [key, list] of samples) {
        const [name, variant, cache] = key.split('\t');
        if (name !== source.name) continue;
        const best = min(list.map((s) => s.ms));
        rows.push([
          variant,
          cache,
          seconds(best),
          seconds(median(list.map((s) => s.ms))),
          mib(list[0].size),
          `${((100 * best) / plain(cache)).toFixed(0)}%`,
        ]);
      }
      rows.splice(1, rows.length - 1, ...rows.slice(1).sort((a, b) => (a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1)));
      console.log(
        `\n${table(rows, `qemu-img convert -f raw -O qcow2 [flags] on ${source.name}.raw (${reps} runs each; best and median: the machine is shared)`)}`,
      );
    }
    if (problems.length) {
      console.log(`\nqemu-img compare FAILED:\n  ${problems.join('\n  ')}`);
      return 1;
    }
    console.log('\nqemu-img compare: every output has the same contents as its source');
    return 0;
  } finally {
    await finish();
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(`bench failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
}
