import { formatBytes } from '../common/units.js';
import type { Appliance } from './appliance.js';
import type { BuildContext } from '../context/build-context.js';
import type { FilesystemInfo, Layout } from './layout.js';

const isExt = (type: string): boolean => /^ext[234]$/.test(type);

/**
 * The file the scrub's appliance writes: the raw disk itself, whose allocation
 * shows whether a discard punched holes, or a qcow2 overlay of it (on a work
 * folder that cannot punch holes), where a discarded cluster always reads as zeros.
 */
export interface ScrubDrive {
  format: 'raw' | 'qcow2';
  path: string;
}

/** Bytes the raw disk has allocated; 0 for an overlay, whose allocation says nothing of a discard. */
async function allocated(ctx: BuildContext, drive: ScrubDrive): Promise<number> {
  return drive.format === 'raw' ? (await ctx.host.stat(drive.path)).blocks * 512 : 0;
}

/** Swap: contents zeroed (discarded; zero-device writes only what does not read as zero), then re-signed. */
async function zeroSwap(ctx: BuildContext, appliance: Appliance, fs: FilesystemInfo): Promise<void> {
  await appliance.call('blkdiscard', [fs.device], { mayFail: true });
  await appliance.must('zero-device', fs.device);
  const args = [fs.device, ...(fs.label ? [`label:${fs.label}`] : []), ...(fs.uuid ? [`uuid:${fs.uuid}`] : [])];
  await appliance.must('mkswap', ...args);
  const uuid = ((await appliance.probe('vfs-uuid', fs.device)) ?? '').trim();
  if (ctx.host.live && uuid !== fs.uuid) {
    throw new Error(`the swap signature on ${fs.device} was rewritten with UUID ${uuid}, not ${fs.uuid}`);
  }
  fs.action = 'contents zeroed, swap signature rewritten with the same UUID and label';
}

/**
 * fstrim on a fresh mount (Btrfs from its top level, every subvolume with it); true when the raw disk
 * shrank or, on an overlay (whose discarded clusters read as zeros), when fstrim succeeded.
 */
async function trim(ctx: BuildContext, appliance: Appliance, fs: FilesystemInfo, drive: ScrubDrive): Promise<boolean> {
  // Btrfs read-only. On a read-write mount, fstrim sometimes (one build of seven here, under load) left
  // freed tree blocks, which hold small files' data, with a removed log's text: most likely the free
  // space btrfs's allocator had set aside for the mount's own new tree blocks, which fstrim passes by
  // (not confirmed in btrfs's source). A read-only mount allocates nothing; its fstrim discarded them.
  const mounted = await appliance.mountWhole(fs, fs.type === 'btrfs' ? 'ro' : 'rw');
  if (!mounted.ok)
    throw new Error(`mounting ${fs.device} (${fs.type}) to discard its free space failed: ${mounted.error}`);
  let subvolumes = '';
  if (fs.type === 'btrfs') {
    const paths = await appliance.btrfsSubvolumes();
    subvolumes = paths.length ? ` (top level and subvolumes ${paths.join(', ')})` : ' (top level)';
  }
  const before = await allocated(ctx, drive);
  const reply = await appliance.call('fstrim', ['/'], { mayFail: true });
  const after = await allocated(ctx, drive);
  await appliance.must('umount-all');
  if (reply.ok && drive.format === 'qcow2') {
    fs.action = `free space discarded${subvolumes} (zeros in the scrub's overlay)`;
    ctx.reporter.info(`${fs.device} (${fs.type}): ${fs.action}`);
    return true;
  }
  if (reply.ok && after < before) {
    // A dry run's sizes are planned, not measured: it names no figure.
    const shrank = ctx.host.live ? `: the raw file shrank by ${formatBytes(before - after)}` : '';
    fs.action = `free space discarded${subvolumes}${shrank}`;
    ctx.reporter.info(`${fs.device} (${fs.type}): ${fs.action}`);
    return true;
  }
  const why = reply.ok ? 'no space was released' : reply.error;
  const next = isExt(fs.type) ? 'falling back to zerofree' : 'falling back to writing zeros over it';
  ctx.reporter.warning(`discarding the free space of ${fs.device} (${fs.type}) did not punch holes (${why}); ${next}`);
  fs.action = `discard released no space (${why})${subvolumes}`;
  return false;
}

/**
 * How free space was zeroed: discarded (holes in the raw file), zerofree
 * (ext*), zeros written over it where neither worked, or not at all.
 */
export type Zeroing = 'discard' | 'zerofree' | 'zeros' | 'none';

/**
 * Where discard releases nothing (a file system or device without it) and
 * zerofree cannot go (XFS, Btrfs, vfat): libguestfs's zero-free-space fills
 * the free space with a file of zeros and removes it, so the zeros, not old
 * data, go into the image (qemu-img convert skips them).
 */
async function fillWithZeros(ctx: BuildContext, appliance: Appliance, fs: FilesystemInfo): Promise<void> {
  await appliance.mountWhole(fs, 'rw');
  await appliance.must('zero-free-space', '/');
  await appliance.must('umount-all');
  fs.action = `${fs.action}; free space filled with zeros`;
  ctx.reporter.info(`${fs.device} (${fs.type}): free space filled with zeros`);
}

/**
 * Zero the free space of every file system, each on a fresh mount of its own
 * (unmounting commits the removals: no journal or old tree root still holds
 * the removed files' blocks), and the contents of every swap area.
 */
export async function zeroFreeSpace(
  ctx: BuildContext,
  appliance: Appliance,
  layout: Layout,
  drive: ScrubDrive,
): Promise<Zeroing> {
  const mode = ctx.spec.zeroFreeSpace;
  if (mode === 'none') {
    for (const fs of layout.filesystems) fs.action = 'left as it is (zero-free-space = none)';
    return 'none';
  }
  let discarded = 0;
  let zerofreed = 0;
  let filled = 0;
  for (const fs of layout.filesystems) {
    if (fs.type === 'swap') {
      await zeroSwap(ctx, appliance, fs);
      continue;
    }
    if (mode === 'zerofree' && !isExt(fs.type)) {
      ctx.reporter.warning(
        `zerofree cannot zero a ${fs.type} file system (${fs.device}): discarding its free space instead`,
      );
    }
    if (!(mode === 'zerofree' && isExt(fs.type)) && (await trim(ctx, appliance, fs, drive))) {
      discarded++;
      continue;
    }
    if (isExt(fs.type)) {
      await appliance.must('zerofree', fs.device);
      fs.action = mode === 'zerofree' ? 'free space zeroed by zerofree' : `${fs.action}; free space zeroed by zerofree`;
      ctx.reporter.info(`${fs.device} (${fs.type}): free space zeroed by zerofree`);
      zerofreed++;
    } else {
      await fillWithZeros(ctx, appliance, fs);
      filled++;
    }
  }
  if (zerofreed) return 'zerofree';
  if (filled) return 'zeros';
  return discarded ? 'discard' : 'none';
}
