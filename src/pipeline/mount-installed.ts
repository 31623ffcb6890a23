import type { Appliance } from './appliance.js';
import type { BuildContext } from './context.js';
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
async function findRoot(appliance: Appliance, layout: Layout, tree: GuestTree): Promise<Root | undefined> {
  for (const fs of layout.filesystems.filter((candidate) => ROOT_TYPES.has(candidate.type))) {
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
    if (found) return found;
  }
  return undefined;
}

async function mountAt(
  appliance: Appliance,
  fs: FilesystemInfo,
  mountPoint: string,
  subvolume?: string,
): Promise<void> {
  if (subvolume) await appliance.must('mount-options', subvolume, fs.device, mountPoint);
  else await appliance.must('mount', fs.device, mountPoint);
  fs.mountPoint = mountPoint;
}

/** The root's /etc/fstab, resolved inside the guest (a symlink out of it reads as none). */
async function readFstab(tree: GuestTree): Promise<string> {
  const resolved = await tree.resolveFile('etc/fstab');
  return 'missing' in resolved ? '' : ((await tree.read(resolved.path)) ?? '');
}

/** depth of a mount point: parents are mounted before their children. */
const depth = (mountPoint: string): number => mountPoint.split('/').filter(Boolean).length;

/** Mount what the root's /etc/fstab names on the disk, each where it says, parents first. */
async function mountFstab(ctx: BuildContext, appliance: Appliance, layout: Layout, tree: GuestTree): Promise<void> {
  const seen = new Set(['/']);
  const entries = parseFstab(await readFstab(tree)).sort((a, b) => depth(a.mountPoint) - depth(b.mountPoint));
  for (const entry of entries) {
    const mountPoint = entry.mountPoint.replace(/\/+$/, '');
    if (!mountPoint || seen.has(mountPoint)) continue;
    const fs = resolveSpec(entry.spec, layout.filesystems);
    if (!fs) {
      // A file system elsewhere (nfs, tmpfs, a bind mount) is not the installer's to scrub.
      if (/^(UUID|LABEL|PARTUUID|PARTLABEL)=|^\/dev\//.test(entry.spec))
        ctx.reporter.warning(
          `the installed system's /etc/fstab (line ${entry.line}) names ${entry.spec} for ${mountPoint}, which is not on the disk`,
        );
      continue;
    }
    const resolved = await tree.resolveFolder(mountPoint);
    if ('missing' in resolved || `/${resolved.path}` !== mountPoint) {
      ctx.reporter.warning(
        `not mounting ${fs.device} at ${mountPoint}: it is not a plain folder of the installed system`,
      );
      continue;
    }
    seen.add(mountPoint);
    await mountAt(appliance, fs, mountPoint, fs.type === 'btrfs' ? btrfsSubvolumeOption(entry.options) : undefined);
  }
}

/**
 * Mount the installed system inside the appliance: its root (the file system
 * or Btrfs subvolume holding /etc) at /, then each file system where its
 * /etc/fstab puts it (UUID=, LABEL=, PARTUUID=, PARTLABEL=, device paths, LVM
 * names). A mount point that is not a plain folder of the guest (a symlink on
 * the way) is skipped and said. Without a recognisable root, a single file
 * system is taken as the root; otherwise none is mounted (false).
 */
export async function mountInstalledSystem(
  ctx: BuildContext,
  appliance: Appliance,
  layout: Layout,
  tree: GuestTree,
): Promise<boolean> {
  const root = await findRoot(appliance, layout, tree);
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
    await mountAt(appliance, candidates[0], '/');
    return true;
  }
  await mountAt(appliance, root.fs, '/', root.subvolume === undefined ? undefined : `subvol=${root.subvolume}`);
  await mountFstab(ctx, appliance, layout, tree);
  ctx.reporter.info(`Installed system's root: ${describeRoot(root)}`);
  return true;
}
