import type { Appliance } from './appliance.js';
import type { BuildContext } from './context.js';
import type { GuestTree } from './guest-tree.js';
import type { FilesystemInfo, Layout } from './layout.js';

/** File systems an installed system's root can be on. */
const ROOT_TYPES = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs']);

/** A device as inspection names it: a file system's device, or `btrfsvol:DEVICE/SUBVOLUME`. */
function filesystemOf(layout: Layout, device: string): { fs?: FilesystemInfo; subvolume?: string } {
  if (!device.startsWith('btrfsvol:')) return { fs: layout.filesystems.find((fs) => fs.device === device) };
  const rest = device.slice('btrfsvol:'.length);
  const fs = layout.filesystems
    .filter((candidate) => rest.startsWith(`${candidate.device}/`))
    .sort((a, b) => b.device.length - a.device.length)[0];
  return { fs, subvolume: fs ? rest.slice(fs.device.length + 1) : undefined };
}

/** `inspect-get-mountpoints`' "MOUNTPOINT: DEVICE" lines, parents before children. */
function parseMountpoints(text: string): Array<{ mountPoint: string; device: string }> {
  return text
    .split('\n')
    .map((line) => /^(\/\S*): (\S+)$/.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map(([, mountPoint, device]) => ({ mountPoint, device }))
    .sort((a, b) => a.mountPoint.split('/').filter(Boolean).length - b.mountPoint.split('/').filter(Boolean).length);
}

async function mountOne(
  appliance: Appliance,
  layout: Layout,
  device: string,
  mountPoint: string,
): Promise<FilesystemInfo | undefined> {
  const { fs, subvolume } = filesystemOf(layout, device);
  if (!fs) return undefined;
  if (subvolume !== undefined) await appliance.must('mount-options', `subvol=${subvolume}`, fs.device, mountPoint);
  else await appliance.must('mount', fs.device, mountPoint);
  fs.mountPoint = mountPoint;
  return fs;
}

/**
 * Mount the installed system inside the appliance, each file system where its
 * /etc/fstab puts it (libguestfs's inspection resolves UUID=, LABEL=,
 * PARTUUID=, device paths and LVM names). A mount point that is not a plain
 * folder of the guest (a symlink on the way) is skipped and said. Without a
 * system that inspection recognises, a single file system is taken as the
 * root; otherwise none is mounted (false).
 */
export async function mountInstalledSystem(
  ctx: BuildContext,
  appliance: Appliance,
  layout: Layout,
  tree: GuestTree,
): Promise<boolean> {
  // inspect-os finds no system on a disk without one (no error); an error is the appliance failing, not an empty disk.
  const roots = (await appliance.must('inspect-os')).split('\n').filter((line) => line.trim());
  if (!roots.length) {
    const candidates = layout.filesystems.filter((fs) => ROOT_TYPES.has(fs.type));
    if (candidates.length !== 1) {
      ctx.reporter.warning(
        'libguestfs found no installed system on the disk (no root file system with /etc): no installer logs removed, no manifest, no generalisation; free space is still zeroed',
      );
      return false;
    }
    ctx.reporter.warning(
      `libguestfs found no installed system: taking ${candidates[0].device}, the only file system, as its root`,
    );
    await mountOne(appliance, layout, candidates[0].device, '/');
    return true;
  }
  const root = roots[0].trim();
  for (const { mountPoint, device } of parseMountpoints(await appliance.must('inspect-get-mountpoints', root))) {
    if (mountPoint !== '/') {
      const resolved = await tree.resolveFolder(mountPoint);
      if ('missing' in resolved || `/${resolved.path}` !== mountPoint) {
        ctx.reporter.warning(
          `not mounting ${device} at ${mountPoint}: it is not a plain folder of the installed system`,
        );
        continue;
      }
    }
    const fs = await mountOne(appliance, layout, device, mountPoint);
    if (!fs)
      ctx.reporter.warning(
        `the installed system's /etc/fstab names ${device} for ${mountPoint}, which is not on the disk`,
      );
  }
  ctx.reporter.info(`Installed system's root: ${root}`);
  return true;
}
