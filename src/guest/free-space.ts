/**
 * Where each file system's free space lies, read by its own tools in the
 * appliance (dumpe2fs, xfs_db, btrfs inspect-internal; the FAT itself), so
 * that the scrub can prove every free byte of the image reads as zero. Their
 * output describes untrusted content: it is parsed as numbers only, checked
 * against the device's size, and anything it cannot account for is an error,
 * never "nothing to check".
 */

/** A byte range, relative to a device or to the disk. */
export interface Extent {
  offset: number;
  length: number;
}

/** A file system's free space: its block size (what a non-zero block is counted in) and its free extents. */
export interface FreeSpace {
  blockSize: number;
  extents: Extent[];
}

export class FreeSpaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FreeSpaceError';
  }
}

const int = (text: string, what: string): number => {
  if (!/^\d+$/.test(text)) throw new FreeSpaceError(`${what}: expected a number, got "${text.slice(0, 40)}"`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new FreeSpaceError(`${what}: ${text} is out of range`);
  return value;
};

/** Sort, merge touching extents, and check each lies inside the device. */
export function normalise(extents: Extent[], deviceSize: number, what: string): Extent[] {
  const sorted = extents.filter((e) => e.length > 0).sort((a, b) => a.offset - b.offset);
  const out: Extent[] = [];
  for (const extent of sorted) {
    if (extent.offset + extent.length > deviceSize)
      throw new FreeSpaceError(
        `${what}: a free extent at ${extent.offset} (+${extent.length}) lies past the device's end (${deviceSize})`,
      );
    const last = out[out.length - 1];
    if (last && extent.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, extent.offset + extent.length - last.offset);
    } else out.push({ ...extent });
  }
  return out;
}

/**
 * ext2/3/4, from `dumpe2fs` (its `Block size:` and each group's `Free blocks:`
 * lists of `a-b` or `a`, absolute block numbers).
 */
export function ext4FreeSpace(text: string, deviceSize: number): FreeSpace {
  const size = /^Block size:\s+(\d+)$/m.exec(text);
  if (!size) throw new FreeSpaceError('dumpe2fs printed no block size');
  const blockSize = int(size[1], 'dumpe2fs block size');
  const extents: Extent[] = [];
  let groups = 0;
  for (const match of text.matchAll(/^\s*Free blocks: (.*)$/gm)) {
    groups++;
    for (const item of match[1]
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean)) {
      const [first, last = first] = item.split('-');
      const from = int(first, 'dumpe2fs free block');
      const to = int(last, 'dumpe2fs free block');
      if (to < from) throw new FreeSpaceError(`dumpe2fs: a free range ${item} ends before it starts`);
      extents.push({ offset: from * blockSize, length: (to - from + 1) * blockSize });
    }
  }
  if (!groups) throw new FreeSpaceError('dumpe2fs printed no group (no "Free blocks:" line)');
  return { blockSize, extents: normalise(extents, deviceSize, 'ext') };
}

/** XFS, from `xfs_db -r -c 'sb 0' -c 'p agblocks blocksize' -c 'freesp -d'`: each `agno agbno len` line. */
export function xfsFreeSpace(text: string, deviceSize: number): FreeSpace {
  const agblocks = /^agblocks = (\d+)$/m.exec(text);
  const block = /^blocksize = (\d+)$/m.exec(text);
  if (!agblocks || !block) throw new FreeSpaceError('xfs_db printed no agblocks or blocksize');
  const blockSize = int(block[1], 'xfs blocksize');
  const perAg = int(agblocks[1], 'xfs agblocks');
  const header = text.search(/^\s*agno\s+agbno\s+len\s*$/m);
  if (header < 0) throw new FreeSpaceError("xfs_db printed no free extent table ('freesp -d')");
  const extents: Extent[] = [];
  for (const line of text.slice(header).split('\n').slice(1)) {
    const row = /^\s*(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(line);
    if (!row) break;
    const [agno, agbno, len] = [int(row[1], 'agno'), int(row[2], 'agbno'), int(row[3], 'len')];
    extents.push({ offset: (agno * perAg + agbno) * blockSize, length: len * blockSize });
  }
  return { blockSize, extents: normalise(extents, deviceSize, 'xfs') };
}

interface Chunk {
  logical: number;
  length: number;
  profile: string;
  stripes: number[];
}

/** The sections of the btrfs listing (dump-super, the chunk tree, the extent tree), each after a `== NAME` line. */
function sections(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/^== /m).slice(1)) {
    const newline = part.indexOf('\n');
    out[part.slice(0, newline).trim()] = part.slice(newline + 1);
  }
  return out;
}

/** The superblock copies btrfs keeps outside every chunk (64 KiB, 64 MiB, 256 GiB), 4 KiB each. */
const BTRFS_SUPERS = [64 * 1024, 64 * 1024 * 1024, 256 * 1024 * 1024 * 1024];
const BTRFS_RESERVED = 1024 * 1024;

/**
 * Btrfs on one device, from its chunk tree (logical ranges, their profile
 * and where each copy lies on the device), its extent tree (block groups,
 * data and tree-block extents) and its superblock (nodesize, sectorsize).
 * Free: each block group's logical space no extent uses, at every copy, and
 * the device space no chunk holds (past the first MiB, superblock copies aside).
 */
export function btrfsFreeSpace(text: string, deviceSize: number): FreeSpace {
  const parts = sections(text);
  const superblock = parts.super ?? '';
  const nodesize = /^nodesize\s+(\d+)$/m.exec(superblock);
  const sectorsize = /^sectorsize\s+(\d+)$/m.exec(superblock);
  const devices = /^num_devices\s+(\d+)$/m.exec(superblock);
  if (!nodesize || !sectorsize || !devices) throw new FreeSpaceError('btrfs dump-super printed no nodesize');
  if (devices[1] !== '1') throw new FreeSpaceError(`btrfs on ${devices[1]} devices: only one is checked`);
  const blockSize = int(sectorsize[1], 'btrfs sectorsize');
  const nodeSize = int(nodesize[1], 'btrfs nodesize');
  const chunks: Chunk[] = [];
  let current: Chunk | undefined;
  for (const line of (parts.chunk ?? '').split('\n')) {
    const key = /key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\)/.exec(line);
    if (key) {
      current = { logical: int(key[1], 'chunk'), length: 0, profile: '', stripes: [] };
      chunks.push(current);
      continue;
    }
    const length = /^\s*length (\d+) owner \d+ stripe_len \d+ type (\S+)/.exec(line);
    if (length && current) {
      current.length = int(length[1], 'chunk length');
      current.profile = length[2].split('|').pop() ?? '';
    }
    const stripe = /^\s*stripe \d+ devid (\d+) offset (\d+)/.exec(line);
    if (stripe && current) current.stripes.push(int(stripe[2], 'stripe offset'));
  }
  if (!chunks.length) throw new FreeSpaceError('btrfs dump-tree printed no chunk');
  for (const chunk of chunks)
    if (!['single', 'DUP'].includes(chunk.profile) || !chunk.stripes.length)
      throw new FreeSpaceError(
        `a btrfs chunk of profile ${chunk.profile || '(none)'}: only single and DUP are checked`,
      );
  const groups: Extent[] = [];
  const used: Extent[] = [];
  for (const match of (parts.extent ?? '').matchAll(
    /key \((\d+) (BLOCK_GROUP_ITEM|EXTENT_ITEM|METADATA_ITEM) (\d+)\)/g,
  )) {
    const start = int(match[1], 'extent');
    if (match[2] === 'BLOCK_GROUP_ITEM') groups.push({ offset: start, length: int(match[3], 'block group') });
    else used.push({ offset: start, length: match[2] === 'METADATA_ITEM' ? nodeSize : int(match[3], 'extent') });
  }
  if (!groups.length) throw new FreeSpaceError('btrfs dump-tree printed no block group');
  const extents: Extent[] = [];
  const usedSorted = normalise(used, Number.MAX_SAFE_INTEGER, 'btrfs');
  for (const group of groups) {
    const chunk = chunks.find((c) => c.logical === group.offset && c.length === group.length);
    if (!chunk) throw new FreeSpaceError(`btrfs block group ${group.offset} has no chunk of its size`);
    for (const free of subtract([group], usedSorted))
      for (const stripe of chunk.stripes)
        extents.push({ offset: stripe + free.offset - chunk.logical, length: free.length });
  }
  const held: Extent[] = [{ offset: 0, length: BTRFS_RESERVED }];
  for (const chunk of chunks) for (const stripe of chunk.stripes) held.push({ offset: stripe, length: chunk.length });
  for (const copy of BTRFS_SUPERS) held.push({ offset: copy, length: 4096 });
  extents.push(...subtract([{ offset: 0, length: deviceSize }], normalise(held, Number.MAX_SAFE_INTEGER, 'btrfs')));
  // A superblock copy inside a chunk is kept out of its block group's use, but it is no free space.
  const supers = BTRFS_SUPERS.map((offset) => ({ offset, length: 4096 }));
  return { blockSize, extents: subtract(normalise(extents, deviceSize, 'btrfs'), supers) };
}

/** `from` minus `holes` (both sorted, holes merged). */
export function subtract(from: Extent[], holes: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const range of from) {
    let at = range.offset;
    const end = range.offset + range.length;
    for (const hole of holes) {
      if (hole.offset + hole.length <= at) continue;
      if (hole.offset >= end) break;
      if (hole.offset > at) out.push({ offset: at, length: hole.offset - at });
      at = Math.max(at, hole.offset + hole.length);
    }
    if (at < end) out.push({ offset: at, length: end - at });
  }
  return out;
}

/** What a FAT's boot sector says of its layout. */
export interface FatGeometry {
  bytesPerSector: number;
  sectorsPerCluster: number;
  /** Byte offset and length of the first FAT. */
  fatOffset: number;
  fatLength: number;
  /** Byte offset of cluster 2. */
  dataOffset: number;
  clusters: number;
  bits: 12 | 16 | 32;
}

/** The boot sector of a FAT (its BPB), as Microsoft's specification reads it. */
export function fatGeometry(boot: Buffer): FatGeometry {
  if (boot.length < 512 || boot[510] !== 0x55 || boot[511] !== 0xaa)
    throw new FreeSpaceError('the FAT boot sector has no 55 AA signature');
  const bytesPerSector = boot.readUInt16LE(11);
  const sectorsPerCluster = boot[13];
  const reserved = boot.readUInt16LE(14);
  const fats = boot[16];
  const rootEntries = boot.readUInt16LE(17);
  const total = boot.readUInt16LE(19) || boot.readUInt32LE(32);
  const fatSectors = boot.readUInt16LE(22) || boot.readUInt32LE(36);
  if (![512, 1024, 2048, 4096].includes(bytesPerSector) || !sectorsPerCluster || !fats || !fatSectors || !total)
    throw new FreeSpaceError('the FAT boot sector holds an impossible geometry');
  const rootSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const dataSector = reserved + fats * fatSectors + rootSectors;
  if (dataSector >= total) throw new FreeSpaceError('the FAT boot sector puts its data area past its end');
  const clusters = Math.floor((total - dataSector) / sectorsPerCluster);
  const bits = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  return {
    bytesPerSector,
    sectorsPerCluster,
    fatOffset: reserved * bytesPerSector,
    fatLength: fatSectors * bytesPerSector,
    dataOffset: dataSector * bytesPerSector,
    clusters,
    bits,
  };
}

/** vfat: the clusters its first FAT marks free (entry 0). */
export function fatFreeSpace(geometry: FatGeometry, fat: Buffer, deviceSize: number): FreeSpace {
  const { bits, clusters, dataOffset } = geometry;
  const clusterSize = geometry.bytesPerSector * geometry.sectorsPerCluster;
  if (fat.length < Math.ceil(((clusters + 2) * bits) / 8))
    throw new FreeSpaceError('the FAT is shorter than its clusters');
  const entry = (n: number): number => {
    if (bits === 32) return fat.readUInt32LE(n * 4) & 0x0fffffff;
    if (bits === 16) return fat.readUInt16LE(n * 2);
    const pair = fat.readUInt16LE(Math.floor(n * 1.5));
    return n % 2 ? pair >> 4 : pair & 0xfff;
  };
  const extents: Extent[] = [];
  for (let n = 2; n < clusters + 2; n++)
    if (entry(n) === 0) extents.push({ offset: dataOffset + (n - 2) * clusterSize, length: clusterSize });
  return { blockSize: clusterSize, extents: normalise(extents, deviceSize, 'vfat') };
}
