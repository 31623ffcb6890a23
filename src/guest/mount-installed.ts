import type { Appliance } from './appliance.js';
import type { BuildContext } from '../context/build-context.js';
import { btrfsSubvolumeOption, parseFstab, resolveSpec } from './fstab.js';
import type { GuestTree } from './guest-tree.js';
import type { FilesystemInfo, Layout } from './layout.js';

/** File systems an installed system's root can be on. */
const ROOT_TYPES = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs']);

/** The installed system's root: a file system, on Btrfs a subvolume of it (its path from the top level). */
interface Root {
  fs: FilesystemInfo;
  subvolume?: string;
}

const describeRoot = (root: Root): string =>
  root.subvolume === undefined ? root.fs.device : `${root.fs.device}, subvolume ${root.subvolume}`;

/** A system's root folder: an `etc` folder holding fstab or os-release (lstat: a symlink counts, unfollowed). */
async function looksLikeRoot(tree: GuestTree, prefix: string): Promise<boolean> {
  if ((await tree.kind(`${prefix}etc`)).kind !== 'dir') return false;
  for (const name of ['fstab', 'os-release']) {
    if ((await tree.kind(`${prefix}etc/${name}`)).kind !== 'missing') return true;
  }
  return false;
}

/**
 * Find the root among the file systems: each mounted read-only at / in turn
 * (a Btrfs from its top level, its subvolumes looked into from there), the
 * first holding a system's /etc. libguestfs's inspect-os finds the same, but
 * takes about 30 s under TCG where this takes one mount a file system.
 */
async function findRoot(
  appliance: Appliance,
  layout: Layout,
  tree: GuestTree,
  table: MountTable,
): Promise<Root | undefined> {
  for (const fs of layout.filesystems.filter((candidate) => ROOT_TYPES.has(candidate.type))) {
    table.changed();
    if (!(await appliance.mountWhole(fs, 'ro')).ok) continue;
    let found: Root | undefined;
    if (await looksLikeRoot(tree, '')) found = { fs };
    else if (fs.type === 'btrfs') {
      for (const path of await appliance.btrfsSubvolumes()) {
        // A name mount's options cannot carry (a comma) is not taken.
        if (!found && !path.includes(',') && (await looksLikeRoot(tree, `${path}/`))) found = { fs, subvolume: path };
      }
    }
    await appliance.must('umount-all');
    table.changed();
    if (found) return found;
  }
  return undefined;
}

/**
 * Where the installed system's file systems are mounted in the appliance:
 * each alone, at a folder of the appliance's own (`mkmountpoint`), and a
 * guest path is mapped onto the one whose mount point (the fstab's) is its
 * longest prefix. So a file system is reached whatever the root holds at its
 * mount point: a missing folder (systemd makes it at boot), a symlink.
 */
export class MountTable {
  /** Guest mount point (relative: '' for the root, 'var') → the appliance folder it is mounted at. */
  private mounts: Array<{ guest: string; at: string }> = [{ guest: '', at: '' }];
  /** Changes whenever what a path shows may have changed (a mount): what was read of the tree is stale. */
  generation = 0;

  /** Say that something was mounted or unmounted. */
  changed(): void {
    this.generation++;
  }

  /** The appliance path of a guest path (relative to the guest's root). */
  map(path: string): string {
    const mount = this.mounts
      .filter((m) => m.guest === '' || path === m.guest || path.startsWith(`${m.guest}/`))
      .sort((a, b) => b.guest.length - a.guest.length)[0];
    const rest = path.slice(mount.guest.length).replace(/^\/+/, '');
    return `${mount.at}/${rest}`.replace(/\/+$/, '') || '/';
  }

  usesFolder(at: string): boolean {
    return this.mounts.some((m) => m.at === at);
  }

  set(guest: string, at: string): void {
    this.mounts = [...this.mounts.filter((m) => m.guest !== guest), { guest, at }];
    this.changed();
  }
}

async function mountAt(
  appliance: Appliance,
  table: MountTable,
  fs: FilesystemInfo,
  mountPoint: string,
  subvolume?: string,
): Promise<void> {
  // The root at /installed, /var at /installed_var (a number added where two names meet).
  let at = `/installed${mountPoint === '/' ? '' : mountPoint.replace(/[^A-Za-z0-9.-]/g, '_')}`;
  for (let n = 2; table.usesFolder(at); n++) at = `${at.replace(/~\d+$/, '')}~${n}`;
  await appliance.must('mkmountpoint', at);
  if (subvolume) await appliance.must('mount-options', subvolume, fs.device, at);
  else await appliance.must('mount', fs.device, at);
  table.set(mountPoint.replace(/^\/+/, ''), at);
  fs.mountPoint = mountPoint;
}

/** The root's /etc/fstab, resolved inside the guest (a symlink out of it reads as none). */
async function readFstab(tree: GuestTree): Promise<string> {
  const resolved = await tree.resolveFile('etc/fstab');
  // An fstab is a few KiB: one larger than 1 MiB is not read (GuestFileTooLarge fails the scrub).
  return 'missing' in resolved ? '' : ((await tree.read(resolved.path, 1024 * 1024)) ?? '');
}

/** Mount what the root's /etc/fstab names on the disk, each at a folder of its own, mapped to where fstab says. */
async function mountFstab(
  ctx: BuildContext,
  appliance: Appliance,
  layout: Layout,
  tree: GuestTree,
  table: MountTable,
): Promise<void> {
  const seen = new Set(['/']);
  for (const entry of parseFstab(await readFstab(tree))) {
    const mountPoint = `/${entry.mountPoint.split('/').filter(Boolean).join('/')}`;
    if (seen.has(mountPoint)) continue;
    if (mountPoint.split('/').some((part) => part === '.' || part === '..')) {
      ctx.reporter.warning(
        `the installed system's /etc/fstab (line ${entry.line}) names the mount point ${entry.mountPoint}, which is not a plain path: not mounted`,
      );
      continue;
    }
    const fs = resolveSpec(entry.spec, layout.filesystems);
    if (!fs) {
      // A file system elsewhere (nfs, tmpfs, a bind mount) is not the installer's to scrub.
      if (/^(UUID|LABEL|PARTUUID|PARTLABEL)=|^\/dev\//.test(entry.spec))
        ctx.reporter.warning(
          `the installed system's /etc/fstab (line ${entry.line}) names ${entry.spec} for ${mountPoint}, which is not on the disk`,
        );
      continue;
    }
    seen.add(mountPoint);
    if ((await tree.kind(mountPoint.slice(1))).kind !== 'dir')
      ctx.reporter.info(
        `${mountPoint} is not a folder of the installed system's root (the system makes or follows it at boot): ${fs.device} is read as ${mountPoint} all the same`,
      );
    await mountAt(
      appliance,
      table,
      fs,
      mountPoint,
      fs.type === 'btrfs' ? btrfsSubvolumeOption(entry.options) : undefined,
    );
  }
}

/**
 * Mount the installed system inside the appliance: its root (the file system
 * or Btrfs subvolume holding /etc), then each file system its /etc/fstab
 * names (UUID=, LABEL=, PARTUUID=, PARTLABEL=, device paths, LVM names), each
 * at a folder of the appliance's own, with `table` mapping the guest's paths
 * onto them. Without a recognisable root, a single file system is taken as
 * the root; otherwise none is mounted (false).
 */
export async function mountInstalledSystem(
  ctx: BuildContext,
  appliance: Appliance,
  layout: Layout,
  tree: GuestTree,
  table: MountTable,
): Promise<boolean> {
  const root = await findRoot(appliance, layout, tree, table);
  if (!root) {
    const candidates = layout.filesystems.filter((fs) => ROOT_TYPES.has(fs.type));
    if (candidates.length !== 1) {
      ctx.reporter.warning(
        'found no installed system on the disk (no file system with an /etc holding fstab or os-release): no installer logs removed, no manifest, no generalisation; free space is still zeroed',
      );
      return false;
    }
    ctx.reporter.warning(
      `found no installed system: taking ${candidates[0].device}, the only file system, as its root`,
    );
    await mountAt(appliance, table, candidates[0], '/');
    return true;
  }
  await mountAt(appliance, table, root.fs, '/', root.subvolume === undefined ? undefined : `subvol=${root.subvolume}`);
  await mountFstab(ctx, appliance, layout, tree, table);
  ctx.reporter.info(`Installed system's root: ${describeRoot(root)}`);
  return true;
}
