import { createCipheriv, createHash } from 'node:crypto';
import { chmod, link, mkdir, open, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchHost } from './host.js';
import { output } from './proc.js';

export interface ImageLayout {
  /** Size of the raw disk. */
  size: number;
  /** Incompressible data written and deleted again (what an installer leaves in free space). */
  data: number;
  /** Data kept as files. */
  keep: number;
  /**
   * What the kept files hold: `random` (incompressible, the default) or
   * `system` (copies of this host's /usr files: compresses as an OS does).
   */
  content?: 'random' | 'system';
}

/** What a mounted result must hold: regular files by SHA-256, symlinks by target, folders. */
export type Manifest = Map<string, string>;

export interface GeneratedImage {
  path: string;
  partitionOffset: number;
  partitionSize: number;
  /** The tree after the installer logs are removed (lost+found included). */
  manifest: Manifest;
  /** Installer-log paths written into the image, relative to its root. */
  logs: string[];
  ms: number;
}

export const PARTITION_OFFSET = 1 << 20;
const CHUNK = 4 << 20;

/** A fast, seekable, incompressible byte stream: AES-128-CTR over zeros, as `openssl enc` on /dev/zero. */
class Noise {
  private readonly cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  private readonly zeros = Buffer.alloc(CHUNK);
  next(length: number): Buffer {
    return this.cipher.update(this.zeros.subarray(0, length));
  }
}

/** A small deterministic generator for file sizes. */
class Lcg {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (Math.imul(this.state, 1664525) + 1013904223) >>> 0;
    return this.state / 2 ** 32;
  }
}

async function writeNoise(noise: Noise, path: string, size: number): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const hash = createHash('sha256');
  const file = await open(path, 'w');
  try {
    for (let done = 0; done < size;) {
      const chunk = noise.next(Math.min(CHUNK, size - done));
      hash.update(chunk);
      await file.write(chunk);
      done += chunk.length;
    }
  } finally {
    await file.close();
  }
  return hash.digest('hex');
}

async function writeText(path: string, text: string | Buffer, mode = 0o644): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text, { mode });
  return createHash('sha256').update(text).digest('hex');
}

/** Kept files of varied sizes (4 KiB to 8 MiB) summing to `total`, as packages would leave them. */
async function writeKept(
  noise: Noise,
  rng: Lcg,
  root: string,
  prefix: string,
  total: number,
  manifest: Manifest,
): Promise<void> {
  let written = 0;
  for (let i = 0; written < total; i += 1) {
    const size = Math.min(total - written, 4096 + Math.floor(rng.next() * rng.next() * (8 << 20)));
    const rel = `usr/lib/bench/${prefix}${String(Math.floor(i / 16)).padStart(2, '0')}/file-${String(i).padStart(3, '0')}.so`;
    manifest.set(rel, await writeNoise(noise, join(root, rel), size));
    written += size;
  }
}

/** Regular files of this host under `dirs`, in a stable order, until `total` bytes. */
async function* hostFiles(dirs: string[]): AsyncGenerator<string> {
  for (const dir of dirs) {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) yield* hostFiles([path]);
      else if (entry.isFile()) yield path;
    }
  }
}

/** Kept files copied from this host's /usr, summing to about `total`. */
async function writeSystemFiles(
  root: string,
  prefix: string,
  total: number,
  skip: Set<string>,
  manifest: Manifest,
): Promise<void> {
  let written = 0;
  let i = 0;
  for await (const source of hostFiles(['/usr/lib/x86_64-linux-gnu', '/usr/share', '/usr/bin', '/usr/lib'])) {
    if (written >= total) return;
    if (skip.has(source)) continue;
    let data: Buffer;
    try {
      data = await readFile(source);
    } catch {
      continue;
    }
    if (data.length > total - written) continue;
    skip.add(source);
    const rel = `usr/lib/bench/${prefix}${String(Math.floor(i / 64)).padStart(2, '0')}/${String(i).padStart(4, '0')}-${source.split('/').pop()}`;
    manifest.set(rel, await writeText(join(root, rel), data));
    written += data.length;
    i += 1;
  }
}

/**
 * Build the bench's disk: an msdos label with one ext4 partition from 1 MiB,
 * made through a loop device with its inode tables and journal written out;
 * `keep` bytes of files kept, `data` bytes written and deleted again (left in
 * free space, as an installer's downloads are), and fake installer logs.
 */
export async function generateImage(
  bench: BenchHost,
  path: string,
  mountpoint: string,
  layout: ImageLayout,
): Promise<GeneratedImage> {
  const started = performance.now();
  if (layout.data + layout.keep > layout.size * 0.8) {
    throw new Error(
      `--data and --keep (${layout.data + layout.keep} bytes) must fit well inside --size (${layout.size} bytes)`,
    );
  }
  await rm(path, { force: true });
  await writeFile(path, '');
  await truncate(path, layout.size);
  await output(['sfdisk', '--quiet', path], { input: `label: dos\nstart=${PARTITION_OFFSET / 512}, type=83\n` });
  const partitionSize = layout.size - PARTITION_OFFSET;

  const loop = await bench.attachLoop(path, PARTITION_OFFSET, partitionSize);
  await output([
    'mkfs.ext4',
    '-q',
    '-F',
    '-L',
    'bench-root',
    '-E',
    'lazy_itable_init=0,lazy_journal_init=0',
    loop.device,
  ]);
  const mounted = await bench.mount(loop.device, mountpoint);

  const noise = new Noise();
  const rng = new Lcg(20240508);
  const manifest: Manifest = new Map([['lost+found', 'd']]);
  const root = mountpoint;

  // What a system holds besides packages.
  manifest.set('etc/hostname', await writeText(join(root, 'etc/hostname'), 'golden\n'));
  manifest.set(
    'etc/fstab',
    await writeText(join(root, 'etc/fstab'), 'LABEL=bench-root / ext4 errors=remount-ro 0 1\n'),
  );
  manifest.set('etc/shadow', await writeText(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', 0o640));
  manifest.set(
    'var/log/dpkg.log',
    await writeText(join(root, 'var/log/dpkg.log'), 'status installed bench:amd64 1.0\n'.repeat(2000)),
  );
  await mkdir(join(root, 'root'), { recursive: true });
  await chmod(join(root, 'root'), 0o700);
  manifest.set('root/.bashrc', await writeText(join(root, 'root/.bashrc'), 'PS1="# "\n'));
  await mkdir(join(root, 'var/empty'), { recursive: true });

  const copied = new Set<string>();
  const keep = (prefix: string, total: number): Promise<void> =>
    layout.content === 'system'
      ? writeSystemFiles(root, prefix, total, copied, manifest)
      : writeKept(noise, rng, root, prefix, total, manifest);
  await keep('a', Math.floor(layout.keep / 2));

  // The installer's downloads: written, synced to the disk, deleted below.
  const junk: string[] = [];
  for (let done = 0, i = 0; done < layout.data; i += 1) {
    const size = Math.min(64 << 20, layout.data - done);
    const rel = `var/cache/apt/archives/package-${String(i).padStart(3, '0')}.deb`;
    await writeNoise(noise, join(root, rel), size);
    junk.push(rel);
    done += size;
  }
  await keep('b', layout.keep - Math.floor(layout.keep / 2));

  // A sparse file, a symlink and a hard link.
  const lastlog = join(root, 'var/log/lastlog');
  const tail = noise.next(4096);
  await writeText(lastlog, '');
  await truncate(lastlog, 8 << 20);
  const handle = await open(lastlog, 'r+');
  await handle.write(tail, 0, tail.length, (8 << 20) - 4096);
  await handle.close();
  manifest.set(
    'var/log/lastlog',
    createHash('sha256')
      .update(Buffer.alloc((8 << 20) - 4096))
      .update(tail)
      .digest('hex'),
  );
  const firstKept = [...manifest.keys()].find((key) => key.startsWith('usr/lib/bench/')) as string;
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await symlink(`../lib/bench/${firstKept.slice('usr/lib/bench/'.length)}`, join(root, 'usr/bin/bench'));
  manifest.set('usr/bin/bench', `l:../lib/bench/${firstKept.slice('usr/lib/bench/'.length)}`);
  await link(join(root, firstKept), join(root, 'usr/lib/bench/hardlink.so'));
  manifest.set('usr/lib/bench/hardlink.so', manifest.get(firstKept) as string);

  // Installer logs (what the scrub step removes).
  const logs: Array<[string, number]> = [
    ['root/anaconda-ks.cfg', 3000],
    ['root/install.log', 200_000],
    ['root/install.log.syslog', 100_000],
    ['var/log/installer/syslog', 2 << 20],
    ['var/log/installer/partman', 50_000],
    ['var/log/installer/cdebconf/questions.dat', 400_000],
    ['var/log/installer/cdebconf/templates.dat', 1 << 20],
    ['var/log/anaconda/anaconda.log', 300_000],
    ['var/log/anaconda/storage.log', 200_000],
    ['var/log/YaST2/y2log', 500_000],
    ['var/lib/YaST2/reconfig_system', 100],
    ['var/adm/autoinstall/logs/profile.log', 20_000],
  ];
  for (const [rel, size] of logs) await writeNoise(noise, join(root, rel), size);

  // Folders (what stays once the logs and the downloads are gone).
  for (const rel of [...manifest.keys()]) {
    for (let dir = dirname(rel); dir !== '.'; dir = dirname(dir)) {
      if (!manifest.has(dir)) manifest.set(dir, 'd');
    }
  }
  for (const dir of ['var/empty', 'var/lib', 'var/adm', 'var/log', 'var/cache/apt/archives', 'root']) {
    for (let d = dir; d !== '.'; d = dirname(d)) manifest.set(d, 'd');
  }

  await output(['sync', '--file-system', root]);
  for (const rel of junk) await rm(join(root, rel));
  await output(['sync', '--file-system', root]);
  await bench.unmount(mounted);
  await bench.cleanup.release(loop.entry);
  await output(['sync', path]);

  return {
    path,
    partitionOffset: PARTITION_OFFSET,
    partitionSize,
    manifest,
    logs: logs.map(([rel]) => rel),
    ms: performance.now() - started,
  };
}
