import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { Appliance } from '../guest/appliance.js';
import { applianceTree } from '../guest/appliance-tree.js';
import type { BuildContext } from '../context/build-context.js';
import type { Registration } from '../context/undo-list.js';
import { GuestFileTooLarge, GuestTree, type EntryKind } from '../guest/guest-tree.js';
import { generalizeSystem, type GeneralizeRow, OPERATIONS, patternFolders } from '../guest/generalize.js';
import { INVENTORY_FOLDERS, inspectSystem, type Inventory } from '../guest/inventory.js';
import { describeLayout, readLayout, type Layout } from '../guest/layout.js';
import { MountTable, mountInstalledSystem } from '../guest/mount-installed.js';
import { checkFreeSpace, findNonZero, type FreeSpaceOnDisk, readFreeSpace, zeroBlocks } from '../guest/zero-check.js';
import { type ScrubDrive, type Zeroing, zeroFreeSpace } from '../guest/zero-free-space.js';

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

/**
 * The folders the inventory, the log removal and the generalisation look
 * into: read ahead in one round trip to the appliance (GuestTree.survey).
 */
const SURVEYED_FOLDERS = [
  ...patternFolders([...INSTALLER_LOG_PATTERNS, ...PRINTED_LOG_PATTERNS]),
  ...patternFolders(OPERATIONS.flatMap((operation) => operation.patterns)),
  ...INVENTORY_FOLDERS,
];

export { ScrubError } from '../guest/layout.js';

export interface ScrubResult {
  /** The root file system's type (the installed system's /). */
  filesystem: string;
  removed: string[];
  /** discard when every file system's free space was discarded, zerofree when any needed zerofree, none otherwise. */
  zeroing: Zeroing;
  /** Bytes the raw file takes on disk afterwards. */
  allocatedBytes: number;
  /** The installed system: distribution, kernels, packages (read before the logs are removed). */
  inventory: Inventory;
  /** The generalisation table: each path found, and what was done (or, with check, would be). */
  generalized: GeneralizeRow[];
  /** Partitions, file systems (type, UUID, label, mount point) and what was done to each. */
  layout: Layout;
  /** Where the scrub's time went, and its commands to the appliance. */
  phases: ScrubPhase[];
}

async function allocatedBytes(ctx: BuildContext, path: string): Promise<number> {
  return (await ctx.host.stat(path)).blocks * 512;
}

const NO_INVENTORY: Inventory = { osRelease: {}, kernels: [], packageManager: 'none', packages: [] };

/**
 * Whether the folder's file system turns a discard into a hole (fallocate's punch-hole mode), probed on
 * a file of the build's own in it. NFSv3, vfat and ramfs do not: qemu then drops the guest's discards,
 * and what the scrub freed keeps its data in the raw file.
 */
async function punchesHoles(ctx: BuildContext, folder: string): Promise<boolean> {
  const probe = join(folder, '.punch-hole-probe');
  const entry = ctx.cleanup.register({ kind: 'path', path: probe });
  await ctx.host.writeFile(probe, new Uint8Array(PROBE_BYTES).fill(0xff), 0o600);
  const punched = await ctx.host.run(
    ['fallocate', '--punch-hole', '--offset', '0', '--length', String(PROBE_BYTES), probe],
    { quiet: true, allowFailure: true },
  );
  await ctx.cleanup.release(entry);
  return punched.exitCode === 0;
}

const PROBE_BYTES = 64 * 1024;

/**
 * Where the raw file cannot get holes, the appliance works on a qcow2 overlay of it instead: a discard
 * there makes its clusters read as zeros whatever the host's file system can do (512-byte clusters, as
 * small as the appliance's discards: qcow2 ignores the parts of a discard smaller than a cluster).
 * `qemu-img commit` then writes the overlay into the raw file: the zeros as zeros.
 */
async function makeOverlay(ctx: BuildContext, disk: string): Promise<{ path: string; entry: Registration }> {
  const path = `${disk}.scrub.qcow2`;
  const entry = ctx.cleanup.register({ kind: 'path', path });
  await ctx.host.run([
    'qemu-img',
    'create',
    '-q',
    '-f',
    'qcow2',
    '-o',
    'cluster_size=512',
    '-F',
    'raw',
    '-b',
    disk,
    path,
  ]);
  ctx.reporter.info(
    `${dirname(disk)} is on a file system that cannot punch holes (discards would be lost): the scrub works on a qcow2 overlay of the disk, whose discarded clusters read as zeros, committed into it afterwards`,
  );
  return { path, entry };
}

async function commitOverlay(ctx: BuildContext, overlay: { path: string; entry: Registration }): Promise<void> {
  await ctx.host.run(['qemu-img', 'commit', '-q', overlay.path]);
  await ctx.cleanup.release(overlay.entry);
  ctx.reporter.info("the scrub's overlay is committed into the raw disk: what it discarded is written as zeros");
}

/**
 * Scrub the installed disk inside the libguestfs appliance: read its layout,
 * mount the installed system's file systems where its /etc/fstab puts them,
 * read the manifest, remove the installer logs where they live and
 * generalise; then, on a fresh mount of each file system, zero its free space
 * (fstrim through the appliance's discard punches holes into the raw file;
 * zerofree for ext*), zero and re-sign swap with its UUID and label.
 */
export async function scrubImage(ctx: BuildContext, diskPath: string): Promise<ScrubResult> {
  const { host, cleanup } = ctx;
  const scratch = await host.makeTempDir(join(tmpdir(), 'image-factory-guest.'));
  const scratchEntry = cleanup.register({ kind: 'path', path: scratch });
  const overlay = (await punchesHoles(ctx, dirname(diskPath))) ? undefined : await makeOverlay(ctx, diskPath);
  const drive: ScrubDrive = overlay ? { format: 'qcow2', path: overlay.path } : { format: 'raw', path: diskPath };
  const started: { appliance?: Appliance } = {};
  const clock = new PhaseClock(() => started.appliance?.roundTrips ?? 0);
  // Assigned inside the phase, so that the launch's own commands (config, add-drive, run) count as its.
  const inside = await clock.time(
    'launch',
    async () => (started.appliance = await Appliance.launch(ctx, drive.path, drive.format)),
  );
  const layout = await clock.time('layout', () => readLayout(inside));
  const mounts = new MountTable();
  const tree = new GuestTree(await applianceTree(ctx, inside, scratch, mounts));
  const installed = await clock.time('mounts', () => mountInstalledSystem(ctx, inside, layout, tree, mounts));
  let inventory = NO_INVENTORY;
  let removed: string[] = [];
  let generalized: GeneralizeRow[] = [];
  if (installed) {
    inventory = await clock.time('inventory', async () => {
      await tree.survey(SURVEYED_FOLDERS);
      return inspectSystem(ctx, tree);
    });
    removed = await clock.time('logs', () => removeInstallerLogs(ctx, tree));
    noteRemovals(layout, removed);
    // Before the free space is zeroed: what generalisation removes is zeroed with it.
    generalized = await clock.time('generalisation', () => generalizeSystem(ctx, tree));
  }
  const zeroing = await zeroAndShutDown(ctx, clock, inside, layout, drive, overlay);
  await cleanup.release(scratchEntry);
  await clock.time('verification', () => checkFreeSpace(ctx, diskPath, zeroing.freeSpace));
  ctx.reporter.info(`scrub: ${clock.describe()}`);
  for (const line of describeLayout(layout)) ctx.reporter.info(`layout: ${line}`);
  const root = layout.filesystems.find((fs) => fs.mountPoint === '/');
  return {
    filesystem: root?.type ?? layout.filesystems[0].type,
    removed,
    zeroing: zeroing.how,
    allocatedBytes: await allocatedBytes(ctx, diskPath),
    inventory,
    generalized,
    layout,
    phases: clock.phases,
  };
}

/**
 * Zero every file system's free space, list it in the same pass, write zeros
 * over free blocks the discard left holding data, and stop the appliance
 * (committing the overlay where there is one). The free space listed is
 * checked on the raw disk once it is final.
 */
async function zeroAndShutDown(
  ctx: BuildContext,
  clock: PhaseClock,
  inside: Appliance,
  layout: Layout,
  drive: ScrubDrive,
  overlay: { path: string; entry: Registration } | undefined,
): Promise<{ how: Zeroing; freeSpace: FreeSpaceOnDisk[] }> {
  const how = await clock.time('zeroing', async () => {
    await inside.must('umount-all');
    return zeroFreeSpace(ctx, inside, layout, drive);
  });
  const freeSpace = await clock.time('verification', async () => (how === 'none' ? [] : readFreeSpace(inside, layout)));
  // The raw file is read as it stands; an overlay is committed only later, so there the last check alone decides.
  if (drive.format === 'raw')
    await clock.time('zeroing', async () => zeroBlocks(ctx, inside, await findNonZero(ctx, drive.path, freeSpace)));
  await clock.time('shutdown', async () => {
    await inside.must('vg-activate-all', 'false');
    await inside.close();
    if (overlay) await commitOverlay(ctx, overlay);
  });
  return { how, freeSpace };
}

/** One phase of the scrub: its seconds and the commands it sent to the appliance. */
export interface ScrubPhase {
  name: string;
  seconds: number;
  roundTrips: number;
}

/** The scrub's time and appliance round trips, phase by phase (a phase named twice adds up). */
class PhaseClock {
  readonly phases: ScrubPhase[] = [];

  constructor(private readonly roundTrips: () => number) {}

  async time<T>(name: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const trips = this.roundTrips();
    try {
      return await work();
    } finally {
      let phase = this.phases.find((p) => p.name === name);
      if (!phase) this.phases.push((phase = { name, seconds: 0, roundTrips: 0 }));
      phase.seconds += (performance.now() - started) / 1000;
      phase.roundTrips += this.roundTrips() - trips;
    }
  }

  describe(): string {
    const total = this.phases.reduce((sum, p) => sum + p.roundTrips, 0);
    const parts = this.phases.map((p) => `${p.name} ${p.seconds.toFixed(1)} s (${p.roundTrips})`);
    return `${parts.join(', ')}; ${total} appliance round trips`;
  }
}

/** Each file system notes the installer logs removed from it (the longest mount point holding the path). */
function noteRemovals(layout: Layout, removed: string[]): void {
  for (const path of removed) {
    const holder = layout.filesystems
      .filter((fs) => fs.mountPoint && (fs.mountPoint === '/' || path.startsWith(`${fs.mountPoint}/`)))
      .sort((a, b) => (b.mountPoint ?? '').length - (a.mountPoint ?? '').length)[0];
    if (holder) holder.removedLogs = [...(holder.removedLogs ?? []), path];
  }
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

/** The largest installer log printed (a real one is a few MiB). */
const PRINTED_LOG_LIMIT = 32 * 1024 * 1024;

/** Print the installer's logs that are regular files of the guest; anything else is named, not read. */
async function printInstallerLogs(ctx: BuildContext, tree: GuestTree): Promise<void> {
  for (const pattern of PRINTED_LOG_PATTERNS) {
    for (const { path, kind, target } of await expand(ctx, tree, pattern)) {
      if (kind === 'dir') continue;
      let content: string | undefined;
      try {
        content = kind === 'file' ? await tree.read(path, PRINTED_LOG_LIMIT) : undefined;
      } catch (error) {
        if (!(error instanceof GuestFileTooLarge)) throw error;
        ctx.reporter.warning(`not printing ${error.message}`);
        continue;
      }
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
export async function removeInstallerLogs(ctx: BuildContext, tree: GuestTree): Promise<string[]> {
  if (ctx.spec.installerLogs) await printInstallerLogs(ctx, tree);
  const removed: string[] = [];
  for (const pattern of INSTALLER_LOG_PATTERNS) {
    for (const { path, kind, target } of await expand(ctx, tree, pattern)) {
      const name = `/${path}`;
      if (removed.includes(name)) continue;
      ctx.reporter.info(`Removing ${name}${kind === 'link' ? ` (a symlink to ${target}: the link only)` : ''}`);
      removed.push(name);
    }
  }
  await tree.removeAll(removed.map((name) => name.slice(1)));
  return removed;
}
