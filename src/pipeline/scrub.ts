import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatBytes } from '../config/units.js';
import type { BuildContext } from './context.js';
import { GuestTree, type EntryKind } from './guest-tree.js';
import { generalizeSystem, type GeneralizeRow } from './generalize.js';
import { inspectSystem, type Inventory } from './inventory.js';
import { loopDevicesOf } from './resources.js';

/** What the original removes after an install, relative to the root of the installed system. */
export const INSTALLER_LOG_PATTERNS = [
  'root/anaconda-ks.cfg',
  'root/install.log*',
  'var/adm/autoinstall',
  'var/lib/YaST2',
  'var/log/anaconda',
  'var/log/installer',
  'var/log/YaST2',
];

/** What the original prints with installer-logs before removing. */
export const PRINTED_LOG_PATTERNS = [
  'root/anaconda-ks.cfg',
  'var/adm/autoinstall/logs/*',
  'var/log/anaconda.*',
  'var/log/anaconda/*',
  'var/log/installer/syslog',
  'var/log/YaST2/y2log',
];

export class ScrubError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScrubError';
  }
}

interface Partition {
  node: string;
  start: number;
  size: number;
  type?: string;
}

export interface ScrubResult {
  filesystem: string;
  removed: string[];
  zeroing: 'discard' | 'zerofree' | 'none';
  /** Bytes the raw file takes on disk afterwards. */
  allocatedBytes: number;
  /** The installed system: distribution, kernels, packages (read before the logs are removed). */
  inventory: Inventory;
  /** The generalisation table: each path found, and what was done (or, with check, would be). */
  generalized: GeneralizeRow[];
}

/** Read the partition table: exactly one partition, as the original requires. */
export async function singlePartition(ctx: BuildContext, diskPath: string): Promise<{ offset: number; size: number }> {
  const result = await ctx.host.run(['sfdisk', '--json', diskPath], {
    captureStdout: true,
    readOnly: true,
    allowFailure: true,
  });
  if (result.exitCode !== 0 || result.stdout.trim() === '') {
    throw new ScrubError(
      `Expected exactly one partition in ${diskPath}, but found no partitions (no partition table: did the installer write the disk?).`,
    );
  }
  const table = JSON.parse(result.stdout) as { partitiontable: { sectorsize?: number; partitions?: Partition[] } };
  const sectorSize = table.partitiontable.sectorsize ?? 512;
  const partitions = table.partitiontable.partitions ?? [];
  if (partitions.length !== 1) {
    const found = partitions.length
      ? `${partitions.length} partitions (${partitions.map((p) => `${p.node}: ${formatBytes(p.size * sectorSize)}`).join(', ')})`
      : 'no partitions';
    throw new ScrubError(`Expected exactly one partition in ${diskPath}, but found ${found}.`);
  }
  return { offset: partitions[0].start * sectorSize, size: partitions[0].size * sectorSize };
}

async function allocatedBytes(ctx: BuildContext, path: string): Promise<number> {
  return (await ctx.host.stat(path)).blocks * 512;
}

/**
 * Mount the single partition, remove the installer logs, and zero its free
 * space so that the image compresses: by discard (fstrim through the loop
 * device punches holes into the raw file) or by zerofree.
 */
export async function scrubImage(ctx: BuildContext, diskPath: string): Promise<ScrubResult> {
  const { host, cleanup } = ctx;
  const partition = await singlePartition(ctx, diskPath);
  const loopEntry = cleanup.register({ kind: 'loop', backingFile: diskPath });
  const losetup = [
    'losetup',
    '--find',
    '--show',
    '--offset',
    String(partition.offset),
    '--sizelimit',
    String(partition.size),
    diskPath,
  ];
  const loop = (await host.run(losetup, { root: true, captureStdout: true })).stdout.trim();
  const filesystem = await filesystemType(ctx, loop);

  const mount = await mountPartition(ctx, loop);
  const inventory = await inspectSystem(ctx, new GuestTree(mount.path, host));
  const removed = await removeInstallerLogs(ctx, mount.path);
  // Before the free space is zeroed: what generalisation removes is zeroed with it.
  const generalized = await generalizeSystem(ctx, new GuestTree(mount.path, host));
  const discarded =
    (await zeroingOf(ctx, filesystem)) === 'discard' && (await discardFreeSpace(ctx, mount, diskPath, filesystem));
  await mount.release();

  let zeroing: ScrubResult['zeroing'] = discarded ? 'discard' : 'none';
  if (ctx.spec.zeroFreeSpace !== 'none' && !discarded && zerofreeCan(filesystem)) {
    await host.run(['zerofree', '-v', loop], { root: true, onLine: progressOf(ctx) });
    zeroing = 'zerofree';
  }
  await cleanup.release(loopEntry);
  const leftover = await loopDevicesOf(host, diskPath);
  if (leftover.length) throw new ScrubError(`loop devices still attached to ${diskPath}: ${leftover.join(', ')}`);
  return { filesystem, removed, zeroing, allocatedBytes: await allocatedBytes(ctx, diskPath), inventory, generalized };
}

const zerofreeCan = (filesystem: string): boolean => /^ext[234]$/.test(filesystem);

/** How free space is zeroed first: discard, or zerofree — which some file systems do not allow. */
async function zeroingOf(ctx: BuildContext, filesystem: string): Promise<ScrubResult['zeroing']> {
  if (ctx.spec.zeroFreeSpace !== 'zerofree' || zerofreeCan(filesystem)) return ctx.spec.zeroFreeSpace;
  ctx.reporter.warning(`zerofree cannot zero a ${filesystem} file system: discarding its free space instead`);
  return 'discard';
}

interface Mounted {
  path: string;
  /** Unmount once more and mount again (a fresh mount). */
  remount(): Promise<void>;
  /** Unmount and remove the mount point. */
  release(): Promise<void>;
}

/** The guest's files are content, never programs or devices of the host. */
const MOUNT_OPTIONS = 'nosuid,nodev,noexec';

/**
 * The partition mounted on `guest` in a new private folder (mkdtemp's 700,
 * this build's user's): the mounted root takes the guest's permissions, the
 * folder above it keeps everybody else out. The undo of both is registered first.
 */
async function mountPartition(ctx: BuildContext, loop: string): Promise<Mounted> {
  const { host, cleanup } = ctx;
  const dir = await host.makeTempDir(join(tmpdir(), 'image-factory.'));
  const dirEntry = cleanup.register({ kind: 'path', path: dir });
  const path = join(dir, 'guest');
  await host.makeDir(path, 0o700);
  const mount = ['mount', '-o', MOUNT_OPTIONS, loop, path];
  let mountEntry = cleanup.register({ kind: 'mount', path });
  await host.run(mount, { root: true });
  return {
    path,
    async remount() {
      await cleanup.release(mountEntry);
      mountEntry = cleanup.register({ kind: 'mount', path });
      await host.run(mount, { root: true });
    },
    async release() {
      await cleanup.release(mountEntry);
      await cleanup.release(dirEntry);
    },
  };
}

/** fstrim the file system; true when the raw file really shrank (the loop device passed the discards on). */
async function discardFreeSpace(
  ctx: BuildContext,
  mount: Mounted,
  diskPath: string,
  filesystem: string,
): Promise<boolean> {
  const { host, reporter } = ctx;
  // Trim on a fresh mount: unmounting commits the removals, and no journal
  // or old tree root (ext4, Btrfs) still holds the removed logs' blocks,
  // which a trim right after the removal would leave with their contents.
  await mount.remount();
  const before = await allocatedBytes(ctx, diskPath);
  const trim = await host.run(['fstrim', '--verbose', mount.path], { root: true, allowFailure: true });
  const after = await allocatedBytes(ctx, diskPath);
  if (trim.exitCode === 0 && after < before) {
    reporter.info(
      `discarded free space: the raw file shrank from ${formatBytes(before)} to ${formatBytes(after)} on disk`,
    );
    return true;
  }
  const why = trim.exitCode === 0 ? 'no space was released' : trim.lastLines.join(' ');
  const next = zerofreeCan(filesystem)
    ? 'falling back to zerofree'
    : `free space of the ${filesystem} file system is left as it is`;
  reporter.warning(`discarding free space did not punch holes into ${diskPath} (${why}); ${next}`);
  return false;
}

function progressOf(ctx: BuildContext): (line: string) => void {
  let last = 0;
  return (line) => {
    // zerofree -v prints "done/total" block counts as it goes.
    const match = /^(\d+)\/(\d+)$/.exec(line.trim());
    if (!match) return;
    const now = Date.now();
    if (now - last < 10_000) return;
    last = now;
    ctx.reporter.progress('scrub', `zerofree ${((100 * Number(match[1])) / Number(match[2])).toFixed(0)}%`);
  };
}

async function filesystemType(ctx: BuildContext, device: string): Promise<string> {
  const result = await ctx.host.run(['blkid', '--probe', '--output', 'value', '--match-tag', 'TYPE', device], {
    root: true,
    captureStdout: true,
    allowFailure: true,
    quiet: true,
  });
  const type = result.stdout.trim();
  if (!type) throw new ScrubError(`the partition holds no file system that blkid recognises (${device})`);
  return type;
}

/** A log path found: its resolved path inside the guest and what lstat says it is. */
interface Found {
  path: string;
  kind: EntryKind;
  target: string;
}

/**
 * Expand the simple patterns above (a `*` in the last component only) inside
 * the guest: the folder is resolved within the guest's root, the matches are
 * its entries as they are (a symlink there is the log path itself).
 */
async function expand(ctx: BuildContext, tree: GuestTree, pattern: string): Promise<Found[]> {
  const slash = pattern.lastIndexOf('/');
  const leaf = pattern.slice(slash + 1);
  const folder = await tree.resolveFolder(pattern.slice(0, slash));
  if ('missing' in folder) {
    if (folder.why) ctx.reporter.warning(`skipping /${pattern}: ${folder.why}`);
    return [];
  }
  const regex = new RegExp(
    `^${leaf
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  const found: Found[] = [];
  for (const entry of await tree.list(folder.path)) {
    if (!regex.test(entry.name)) continue;
    const path = folder.path ? `${folder.path}/${entry.name}` : entry.name;
    const target = entry.kind === 'link' ? (await tree.kind(path)).target : '';
    found.push({ path, kind: entry.kind, target });
  }
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

/** Print the installer's logs that are regular files of the guest; anything else is named, not read. */
async function printInstallerLogs(ctx: BuildContext, tree: GuestTree): Promise<void> {
  for (const pattern of PRINTED_LOG_PATTERNS) {
    for (const { path, kind, target } of await expand(ctx, tree, pattern)) {
      if (kind === 'dir') continue;
      const content = kind === 'file' ? await tree.read(path) : undefined;
      if (content === undefined) {
        const what = kind === 'link' ? `a symlink to ${target}` : 'not a regular file';
        ctx.reporter.warning(`not printing /${path}: it is ${what} (only the guest's regular files are printed)`);
        continue;
      }
      ctx.reporter.info(`Content of /${path}:\n${content}`);
    }
  }
}

/** Print (with installer-logs) and remove the installer's logs; the guest's tree is read as untrusted. */
export async function removeInstallerLogs(ctx: BuildContext, root: string): Promise<string[]> {
  const tree = new GuestTree(root, ctx.host);
  if (ctx.spec.installerLogs) await printInstallerLogs(ctx, tree);
  const removed: string[] = [];
  for (const pattern of INSTALLER_LOG_PATTERNS) {
    for (const { path, kind, target } of await expand(ctx, tree, pattern)) {
      const name = `/${path}`;
      if (removed.includes(name)) continue;
      ctx.reporter.info(`Removing ${name}${kind === 'link' ? ` (a symlink to ${target}: the link only)` : ''}`);
      await tree.remove(path);
      removed.push(name);
    }
  }
  return removed;
}
