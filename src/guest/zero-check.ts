import type { Appliance } from './appliance.js';
import { ApplianceScriptError, runScript, shellQuote } from './appliance-shell.js';
import type { BuildContext } from '../context/build-context.js';
import {
  btrfsFreeSpace,
  type Extent,
  ext4FreeSpace,
  fatFreeSpace,
  fatGeometry,
  type FreeSpace,
  FreeSpaceError,
  xfsFreeSpace,
} from './free-space.js';
import { type FilesystemInfo, type Layout, ScrubError } from './layout.js';

/**
 * The proof that the scrub zeroed every free byte: in the appliance, each
 * file system's own tools say where its free space lies (after the zeroing,
 * every file system unmounted); on the host, every part of it that the raw
 * file holds as data (not a hole) is read, and each file system block there
 * that is not all zeros is counted. Any count above zero fails the scrub.
 */

/** Where a stretch of a device lies on the disk. */
interface Segment {
  device: number;
  disk: number;
  length: number;
  /** Why the stretch cannot be placed on the disk (disk is then -1). */
  why?: string;
}

/** A file system's free space, placed on the disk. */
export interface FreeSpaceOnDisk {
  fs: FilesystemInfo;
  blockSize: number;
  /** Free extents in the device's own offsets, and where the device lies on the disk. */
  extents: Extent[];
  segments: Segment[];
}

/** A device name the appliance gave (a partition, the disk, /dev/VG/LV): put into its shell as it is. */
const PLAIN_DEVICE = /^\/dev\/[A-Za-z0-9+_.\-/]+$/;

/** A script's output; its failure is the free space check's. */
async function toolScript(appliance: Appliance, what: string, script: string): Promise<Buffer> {
  try {
    return await runScript(appliance, what, script);
  } catch (error) {
    if (error instanceof ApplianceScriptError) throw new FreeSpaceError(error.message);
    throw error;
  }
}

/**
 * Run file system tools in the appliance's own shell (not the guest's: for
 * the tools libguestfs has no call for), each command's output after a
 * `== NAME` line. A command that fails stops the listing with its exit status
 * and the end of its error output (no command pipes into another: dash has
 * no pipefail, and a failing first command would read as an empty listing).
 */
async function applianceTools(appliance: Appliance, commands: Array<[string, string]>): Promise<string> {
  const out = (await toolScript(appliance, 'the file system tools', toolsScript(commands))).toString('utf8');
  const failed = /^== failed: (.*)$/m.exec(out);
  if (failed) throw new FreeSpaceError(failed[1].trim());
  return out;
}

/** The script of `applianceTools`: each command run by `run NAME 'COMMAND'`. */
export function toolsScript(commands: Array<[string, string]>): string {
  return [
    // Device nodes settle first (a partition's node is remade after an unmount or a probe).
    'udevadm settle --timeout=60 >/dev/null 2>&1',
    'run() { name=$1; shift; echo "== $name"',
    '  sh -c "$1" >/tmp/ifx-tool.out 2>/tmp/ifx-tool.err; status=$?',
    '  if [ $status -ne 0 ]; then',
    "    echo \"== failed: $name (exit $status): $(tail -c 600 /tmp/ifx-tool.err | tr '\\n' ' ')\"; exit 0; fi",
    '  cat /tmp/ifx-tool.out; }',
    ...commands.map(([name, command]) => `run ${name} ${shellQuote(command)}`),
  ].join('\n');
}

/**
 * The device's name in the appliance's own shell. libguestfs names the disk
 * /dev/sda in its calls and translates; in the appliance the kernel may have
 * named it /dev/sdb (the appliance's own disk races it), so the tools get the
 * name udev gives it by the serial libguestfs set (`hd0`), which cannot be the
 * appliance's disk. A logical volume's /dev/VG/LV is its own.
 */
const device = (fs: FilesystemInfo): string => {
  if (!PLAIN_DEVICE.test(fs.device)) throw new FreeSpaceError(`${fs.device} is not a device name the check can use`);
  const disk = /^\/dev\/sda(\d*)$/.exec(fs.device);
  if (!disk) return fs.device;
  return `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_hd0${disk[1] ? `-part${disk[1]}` : ''}`;
};

/** A FAT's boot sector and table, read as bytes (a FAT32's table is MiBs: it comes back in pieces). */
async function readFat(appliance: Appliance, fs: FilesystemInfo, size: number): Promise<FreeSpace> {
  const bytes = async (offset: number, length: number): Promise<Buffer> => {
    const count = Math.ceil(length / 512);
    const script = `udevadm settle --timeout=60 >/dev/null 2>&1\nexec dd if=${device(fs)} bs=512 skip=${offset / 512} count=${count} status=none`;
    const read = await toolScript(appliance, 'reading the FAT', script);
    if (read.length < length) throw new FreeSpaceError(`read ${read.length} of the FAT's ${length} bytes at ${offset}`);
    return read;
  };
  const geometry = fatGeometry(await bytes(0, 512));
  if (geometry.fatOffset % 512) throw new FreeSpaceError('the FAT does not start on a 512-byte boundary');
  return fatFreeSpace(geometry, await bytes(geometry.fatOffset, geometry.fatLength), size);
}

/** One file system's free extents, in its device's offsets. */
async function readOne(appliance: Appliance, fs: FilesystemInfo, size: number): Promise<FreeSpace> {
  const dev = device(fs);
  switch (fs.type) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      return ext4FreeSpace(await applianceTools(appliance, [['dumpe2fs', `dumpe2fs ${dev}`]]), size);
    case 'xfs':
      return xfsFreeSpace(
        await applianceTools(appliance, [
          ['xfs', `xfs_db -r -c 'sb 0' -c 'p agblocks blocksize' -c 'freesp -d' ${dev}`],
        ]),
        size,
      );
    case 'btrfs': {
      // Only the lines read: a real system's extent tree printed whole is tens of MiB.
      const keep = "sed -n -e '/ITEM/p' -e '/length/p' -e '/stripe/p' /tmp/ifx-tree";
      const text = await applianceTools(appliance, [
        ['super', `btrfs inspect-internal dump-super ${dev}`],
        ['chunk', `btrfs inspect-internal dump-tree -t chunk ${dev} >/tmp/ifx-tree && ${keep}`],
        ['extent', `btrfs inspect-internal dump-tree -t extent ${dev} >/tmp/ifx-tree && ${keep}`],
      ]);
      return btrfsFreeSpace(text, size);
    }
    case 'vfat':
      return readFat(appliance, fs, size);
    case 'swap':
      // The signature page aside, a zeroed swap area is zeros.
      return { blockSize: 4096, extents: [{ offset: 4096, length: size - 4096 }] };
    default:
      throw new FreeSpaceError(`no way to read the free space of ${fs.type}`);
  }
}

/** Where each logical volume lies on the disk: its linear segments, on physical volumes that are partitions. */
async function lvmSegments(appliance: Appliance, layout: Layout): Promise<Map<string, Segment[]>> {
  const out = new Map<string, Segment[]>();
  const volumes = layout.filesystems.filter((fs) => !layout.partitions.some((p) => p.device === fs.device));
  if (!layout.partitions.length || !volumes.length) return out;
  const text = await applianceTools(appliance, [
    // The kernel's name of the disk (libguestfs's /dev/sda may be the appliance's /dev/sdb): lvm prints those.
    ['disk', 'readlink -f /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_hd0'],
    ['pvs', 'lvm pvs --noheadings --nosuffix --units b --separator "|" -o pv_name,pe_start'],
    [
      'lvs',
      'lvm lvs --noheadings --nosuffix --units b --separator "|" -o vg_name,lv_name,seg_start,seg_size,segtype,seg_pe_ranges,vg_extent_size',
    ],
  ]);
  const [, diskText = '', pvText = '', lvText = ''] = text.split(/^== \S+$/m);
  const kernelDisk = diskText.trim();
  // A partition of the disk by the kernel's name, as libguestfs names it.
  const named = (name: string): string => {
    const rest = name.slice(kernelDisk.length);
    return kernelDisk && name.startsWith(kernelDisk) && /^\d*$/.test(rest) ? `/dev/sda${rest}` : name;
  };
  const peStart = new Map<string, number>();
  for (const line of pvText
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    const [name, start] = line.split('|');
    peStart.set(named(name), Number(start));
  }
  for (const line of lvText
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    const [vg, lv, segStart, segSize, type, ranges, extentSize] = line.split('|');
    const name = `/dev/${vg}/${lv}`;
    const range = /^(\/dev\/\S+):(\d+)-(\d+)$/.exec(ranges ?? '');
    const pvName = range ? named(range[1]) : '';
    const pv = layout.partitions.find((p) => p.device === pvName);
    const start = peStart.get(pvName);
    if (type !== 'linear' || !range || !pv || start === undefined || pv.offset === undefined) {
      const why =
        type !== 'linear'
          ? `a ${type} segment`
          : !pv || pv.offset === undefined
            ? `a segment on ${(range?.[1] ?? ranges ?? '').slice(0, 80)}, not a partition of the disk`
            : 'a segment whose physical volume lvm did not list';
      out.set(name, [...(out.get(name) ?? []), { device: -1, disk: -1, length: 0, why }]);
      continue;
    }
    const segment = {
      device: Number(segStart),
      disk: pv.offset + start + Number(range[2]) * Number(extentSize),
      length: Number(segSize),
    };
    out.set(name, [...(out.get(name) ?? []), segment]);
  }
  return out;
}

/**
 * Read, in the appliance, where the free space of every file system (and
 * swap area) lies on the disk. Call it with every file system unmounted.
 */
export async function readFreeSpace(appliance: Appliance, layout: Layout): Promise<FreeSpaceOnDisk[]> {
  const lvs = await lvmSegments(appliance, layout);
  const out: FreeSpaceOnDisk[] = [];
  for (const fs of layout.filesystems) {
    const partition = layout.partitions.find((p) => p.device === fs.device);
    let segments: Segment[];
    if (partition?.offset !== undefined) segments = [{ device: 0, disk: partition.offset, length: partition.size }];
    else if (!layout.partitions.length) segments = [{ device: 0, disk: 0, length: layout.diskSize }];
    else segments = lvs.get(fs.device) ?? [];
    if (!segments.length || segments.some((s) => s.disk < 0)) {
      const why = segments.find((s) => s.why)?.why;
      throw new ScrubError(
        `cannot check that the free space of ${fs.device} (${fs.type}) is zero: it is not a partition or a linear logical volume on one${why ? ` (${why})` : ''}`,
      );
    }
    const size = segments.reduce((sum, s) => Math.max(sum, s.device + s.length), 0);
    try {
      const space = await readOne(appliance, fs, size);
      out.push({ fs, blockSize: space.blockSize, extents: space.extents, segments });
    } catch (error) {
      if (!(error instanceof FreeSpaceError)) throw error;
      throw new ScrubError(`cannot check that the free space of ${fs.device} (${fs.type}) is zero: ${error.message}`);
    }
  }
  return out;
}

/** The ranges of the raw file that hold data (`qemu-img map`: not holes, not known zeros). */
async function dataRanges(ctx: BuildContext, raw: string): Promise<Extent[]> {
  const map = await ctx.host.run(['qemu-img', 'map', '--output=json', '-f', 'raw', raw], {
    captureStdout: true,
    quiet: true,
    readOnly: true,
  });
  if (!ctx.host.live && !map.stdout.trim()) return [{ offset: 0, length: Number.MAX_SAFE_INTEGER }];
  const entries = JSON.parse(map.stdout) as Array<{ start: number; length: number; data: boolean; zero: boolean }>;
  return entries.filter((e) => e.data && !e.zero).map((e) => ({ offset: e.start, length: e.length }));
}

const CHUNK = 4 << 20;

/** Where two sorted lists of disjoint extents overlap, in one sweep of both. */
export function intersect(a: readonly Extent[], b: readonly Extent[]): Extent[] {
  const out: Extent[] = [];
  for (let i = 0, j = 0; i < a.length && j < b.length;) {
    const start = Math.max(a[i].offset, b[j].offset);
    const end = Math.min(a[i].offset + a[i].length, b[j].offset + b[j].length);
    if (start < end) out.push({ offset: start, length: end - start });
    if (a[i].offset + a[i].length < b[j].offset + b[j].length) i++;
    else j++;
  }
  return out;
}

const sorted = (extents: readonly Extent[]): Extent[] => [...extents].sort((x, y) => x.offset - y.offset);

/**
 * Add to `found` the blocks of `space` (the file system's, numbered in its
 * device's offsets) that the raw file holds not all zero: the free extents,
 * placed on the disk segment by segment, against the ranges of data (both
 * sorted), then each whole block they touch read.
 */
async function nonZeroBlocks(
  ctx: BuildContext,
  raw: string,
  space: FreeSpaceOnDisk,
  data: Extent[],
  found: Set<number>,
): Promise<void> {
  const { blockSize } = space;
  const zeros = Buffer.alloc(blockSize);
  const free = sorted(space.extents);
  for (const segment of space.segments) {
    const toDisk = segment.disk - segment.device;
    const inSegment = intersect(free, [{ offset: segment.device, length: segment.length }]);
    const onDisk = inSegment.map((e) => ({ offset: e.offset + toDisk, length: e.length }));
    for (const overlap of intersect(onDisk, data)) {
      // Whole blocks (device offsets) of the free extent that this stretch of data touches.
      const first = Math.floor((overlap.offset - toDisk) / blockSize) * blockSize;
      const last = Math.ceil((overlap.offset + overlap.length - toDisk) / blockSize) * blockSize;
      for (let at = first; at < last; at += CHUNK) {
        const bytes = await ctx.host.readRange(raw, at + toDisk, Math.min(CHUNK, last - at));
        for (let i = 0; i < bytes.length; i += blockSize) {
          const block = bytes.subarray(i, i + blockSize);
          if (!block.equals(zeros.subarray(0, block.length))) found.add((at + i) / blockSize);
        }
      }
    }
  }
}

/** Each file system's free blocks that the raw file holds not all zero (numbered in its device's offsets). */
export async function findNonZero(
  ctx: BuildContext,
  raw: string,
  spaces: FreeSpaceOnDisk[],
): Promise<Map<FreeSpaceOnDisk, number[]>> {
  const data = sorted(await dataRanges(ctx, raw));
  const out = new Map<FreeSpaceOnDisk, number[]>();
  for (const space of spaces) {
    const found = new Set<number>();
    await nonZeroBlocks(ctx, raw, space, data, found);
    out.set(
      space,
      [...found].sort((a, b) => a - b),
    );
  }
  return out;
}

const ZERO_BATCH = 5000;

/**
 * Write zeros over free blocks that discard did not reach (in the appliance,
 * on the unmounted file system's device: blocks its own tools call free),
 * runs of blocks one `dd` each.
 */
export async function zeroBlocks(
  ctx: BuildContext,
  appliance: Appliance,
  found: Map<FreeSpaceOnDisk, number[]>,
): Promise<void> {
  for (const [space, blocks] of found) {
    if (!blocks.length) continue;
    const runs: Array<[number, number]> = [];
    for (const block of blocks) {
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === block) last[1]++;
      else runs.push([block, 1]);
    }
    const dev = device(space.fs);
    // In batches, each script well under libguestfs's message limit however scattered the blocks are.
    for (let i = 0; i < runs.length; i += ZERO_BATCH) {
      await applianceTools(
        appliance,
        runs
          .slice(i, i + ZERO_BATCH)
          .map(([start, count], j) => [
            `zero${i + j}`,
            `dd if=/dev/zero of=${dev} bs=${space.blockSize} seek=${start} count=${count} conv=notrunc,nocreat,fsync`,
          ]),
      );
    }
    ctx.reporter.info(
      `${space.fs.device} (${space.fs.type}): ${blocks.length} free blocks still held data after the discard: written with zeros`,
    );
    space.fs.action = `${space.fs.action}; ${blocks.length} free blocks the discard left written with zeros`;
  }
}

/**
 * Count, on the finished raw disk, the free blocks of each file system that
 * are not zero; note it in each one's action; fail the scrub naming every
 * file system with any.
 */
export async function checkFreeSpace(ctx: BuildContext, raw: string, spaces: FreeSpaceOnDisk[]): Promise<void> {
  const failed: string[] = [];
  for (const [space, found] of await findNonZero(ctx, raw, spaces)) {
    const free = space.extents.reduce((sum, e) => sum + e.length, 0);
    const what = space.fs.type === 'swap' ? 'non-zero blocks in the swap area' : 'non-zero free blocks';
    space.fs.action = `${space.fs.action}; verified: ${found.length} ${what}`;
    ctx.reporter.info(
      `${space.fs.device} (${space.fs.type}): ${found.length} ${what} (of ${Math.round(free / space.blockSize)} of ${space.blockSize} bytes)`,
    );
    if (found.length) {
      // Where, not what: the bytes could be what the scrub removed.
      const where = found.slice(0, 5).map((block) => block * space.blockSize);
      failed.push(
        `${space.fs.device} (${space.fs.type}): ${found.length} ${what} (the first at byte offsets ${where.join(', ')} of the device)`,
      );
    }
  }
  if (failed.length)
    throw new ScrubError(
      `the scrub left data in free space, which could hold what it removed: ${failed.join('; ')}. Nothing is published.`,
    );
}
