import { formatBytes } from '../common/units.js';
import type { Appliance } from './appliance.js';

/** A partition of the disk as the table says. */
export interface PartitionInfo {
  number: number;
  device: string;
  /** The GPT type GUID or the MBR id (0x83). */
  type: string;
  /** What that type is called (EFI system, Linux file system, BIOS boot, …). */
  typeName: string;
  size: number;
  /** Where it starts on the disk, in bytes (blkid's PART_ENTRY_OFFSET). */
  offset?: number;
}

/** A file system (or swap) found on a partition, a logical volume or the whole disk. */
export interface FilesystemInfo {
  device: string;
  type: string;
  uuid: string;
  label: string;
  /** The partition's GPT unique GUID or MBR id (PARTUUID=), and its GPT name (PARTLABEL=), where it is a partition. */
  partuuid?: string;
  partlabel?: string;
  /** Where the installed system mounts it (its /etc/fstab). */
  mountPoint?: string;
  /** What the scrub did to it. */
  action: string;
  /** The installer logs removed from it. */
  removedLogs?: string[];
}

export interface Layout {
  /** gpt, msdos, or none (a file system on the whole disk, or nothing). */
  table: string;
  diskSize: number;
  partitions: PartitionInfo[];
  filesystems: FilesystemInfo[];
  /** Partitions or volumes that hold no file system the scrub handles, and why they are left alone. */
  leftAlone: Array<{ device: string; why: string }>;
}

const GPT_TYPES: Record<string, string> = {
  'C12A7328-F81F-11D2-BA4B-00A0C93EC93B': 'EFI system',
  '21686148-6449-6E6F-744E-656564454649': 'BIOS boot',
  '0FC63DAF-8483-4772-8E79-3D69D8477DE4': 'Linux file system',
  '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F': 'Linux swap',
  'E6D6D379-F507-44C2-A23C-238F2A3DF928': 'Linux LVM',
  'BC13C2FF-59E6-4262-A352-B275FD6F7172': 'Linux extended boot',
  '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709': 'Linux root (x86-64)',
  'B921B045-1DF0-41C3-AF44-4C6F280D3FAE': 'Linux root (ARM 64-bit)',
  '4D21B016-B534-45C2-A9FB-5C16E091FD2D': 'Linux /var',
  'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7': 'Microsoft basic data',
};

const MBR_TYPES: Record<string, string> = {
  '0x83': 'Linux',
  '0x82': 'Linux swap',
  '0x8e': 'Linux LVM',
  '0xef': 'EFI system',
  '0xb': 'FAT32',
  '0xc': 'FAT32 (LBA)',
  '0x6': 'FAT16',
  '0x5': 'extended',
  '0xf': 'extended (LBA)',
};

/** MBR extended partitions: containers of logical partitions, which are listed themselves. */
const EXTENDED = new Set(['0x5', '0xf', '0x85']);

/** File systems whose free space the scrub zeroes. */
export const HANDLED_TYPES = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat', 'swap']);

const lines = (text: string | undefined): string[] =>
  (text ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);

/**
 * What blkid finds on a device (libguestfs runs it with low-level probing):
 * TYPE, UUID, LABEL, and for a partition PART_ENTRY_TYPE, _UUID, _NAME,
 * _NUMBER and _SIZE. One call a device, where list-filesystems and
 * inspect-os take tens of seconds under TCG. Nothing found: no tags.
 */
export async function blkid(appliance: Appliance, device: string): Promise<Record<string, string>> {
  const tags: Record<string, string> = {};
  for (const line of lines(await appliance.probe('blkid', device))) {
    const match = /^([A-Z_]+): (.*)$/.exec(line);
    if (match) tags[match[1]] = match[2];
  }
  return tags;
}

interface Probed {
  device: string;
  tags: Record<string, string>;
}

async function readPartitions(
  appliance: Appliance,
  disk: string,
  table: string,
): Promise<{ partitions: PartitionInfo[]; probed: Probed[] }> {
  const partitions: PartitionInfo[] = [];
  const probed: Probed[] = [];
  for (const device of lines(await appliance.probe('list-partitions'))) {
    if (!device.startsWith(disk)) continue;
    const tags = await blkid(appliance, device);
    const raw = tags.PART_ENTRY_TYPE ?? '';
    const type = table === 'gpt' ? raw.toUpperCase() : raw.toLowerCase();
    if (table !== 'gpt' && EXTENDED.has(type)) continue;
    const typeName = (table === 'gpt' ? GPT_TYPES[type] : MBR_TYPES[type]) ?? 'unknown type';
    const number = Number(tags.PART_ENTRY_NUMBER ?? /(\d+)$/.exec(device)?.[1]);
    const size = Number(tags.PART_ENTRY_SIZE ?? 0) * 512;
    const offset = tags.PART_ENTRY_OFFSET === undefined ? undefined : Number(tags.PART_ENTRY_OFFSET) * 512;
    partitions.push({ number, device, type, typeName, size, ...(offset === undefined ? {} : { offset }) });
    probed.push({ device, tags });
  }
  return { partitions, probed };
}

/** What the appliance finds on the disk: the table, its partitions, and every file system (logical volumes too). */
export async function readLayout(appliance: Appliance): Promise<Layout> {
  const disk = lines(await appliance.must('list-devices'))[0] ?? '/dev/sda';
  const diskSize = Number((await appliance.must('blockdev-getsize64', disk)).trim());
  const table = ((await appliance.probe('part-get-parttype', disk)) ?? '').trim() || 'none';
  const { partitions, probed } =
    table === 'none'
      ? { partitions: [], probed: [{ device: disk, tags: await blkid(appliance, disk) }] }
      : await readPartitions(appliance, disk, table);
  // The appliance activates volume groups at launch: their logical volumes are /dev/VG/LV.
  for (const device of lines(await appliance.probe('lvs')))
    probed.push({ device, tags: await blkid(appliance, device) });
  const filesystems: FilesystemInfo[] = [];
  const leftAlone: Layout['leftAlone'] = [];
  const physicalVolumes: string[] = [];
  for (const { device, tags } of probed) {
    const type = tags.TYPE ?? 'unknown';
    if (type === 'LVM2_member') {
      physicalVolumes.push(device);
    } else if (!HANDLED_TYPES.has(type)) {
      const partition = partitions.find((p) => p.device === device);
      const what = partition ? `a ${partition.typeName} partition` : device;
      leftAlone.push({
        device,
        why: `${what} holding ${type === 'unknown' ? 'no file system known to the scrub' : type}`,
      });
    } else {
      filesystems.push({
        device,
        type,
        uuid: tags.UUID ?? '',
        label: tags.LABEL ?? '',
        ...(tags.PART_ENTRY_UUID ? { partuuid: tags.PART_ENTRY_UUID } : {}),
        ...(tags.PART_ENTRY_NAME ? { partlabel: tags.PART_ENTRY_NAME } : {}),
        action: 'none',
      });
    }
  }
  for (const device of physicalVolumes)
    leftAlone.push({ device, why: 'an LVM physical volume (its logical volumes are handled)' });
  if (!filesystems.length) {
    const found = partitions.length
      ? `${partitions.length} partition(s) (${partitions.map((p) => `${p.device}: ${p.typeName}, ${formatBytes(p.size)}`).join('; ')}) and no file system the scrub handles`
      : `no partition table and no file system on the ${formatBytes(diskSize)} disk (did the installer write it?)`;
    throw new ScrubError(`Expected file systems on the installed disk, but found ${found}.`);
  }
  return { table, diskSize, partitions, filesystems, leftAlone };
}

export class ScrubError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScrubError';
  }
}

/** The layout as lines for the log and the job summary. */
export function describeLayout(layout: Layout): string[] {
  const out = [`partition table: ${layout.table}, disk ${formatBytes(layout.diskSize)}`];
  for (const p of layout.partitions)
    out.push(`partition ${p.number} (${p.device}): ${p.typeName} [${p.type}], ${formatBytes(p.size)}`);
  for (const fs of layout.filesystems) {
    const where = fs.mountPoint ? ` mounted at ${fs.mountPoint}` : '';
    const label = fs.label ? ` label ${fs.label}` : '';
    out.push(`${fs.device}: ${fs.type} UUID ${fs.uuid || '(none)'}${label}${where}: ${fs.action}`);
  }
  for (const item of layout.leftAlone) out.push(`${item.device}: left alone (${item.why})`);
  return out;
}
