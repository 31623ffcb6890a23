import type { FilesystemInfo } from './layout.js';

/**
 * The installed system's /etc/fstab, read as untrusted text, and each entry's
 * device found among the file systems of the disk. The names an installer
 * writes: UUID=, LABEL=, PARTUUID=, PARTLABEL= (quoted or not), their
 * /dev/disk/by-* links, LVM's /dev/VG/LV and /dev/mapper/VG-LV, and kernel
 * device names of the installer's VM (/dev/vda2, /dev/sda2, /dev/nvme0n1p2),
 * all of which are this one disk.
 */

export interface FstabEntry {
  /** 1-based line in the file, for messages. */
  line: number;
  spec: string;
  mountPoint: string;
  type: string;
  options: string[];
}

/** fstab's octal escapes (\040 for a blank). */
const unescape = (field: string): string =>
  field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** The entries that mount a file system at a path: not swap, not comments, not pseudo file systems' "none". */
export function parseFstab(text: string): FstabEntry[] {
  const entries: FstabEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const fields = raw.replace(/#.*$/, '').trim().split(/\s+/).filter(Boolean);
    if (fields.length < 2) return;
    const [spec, mountPoint, type = 'auto', options = 'defaults'] = fields.map(unescape);
    if (!mountPoint.startsWith('/') || type === 'swap') return;
    entries.push({ line: index + 1, spec, mountPoint, type, options: options.split(',') });
  });
  return entries;
}

/** LVM's /dev/mapper name: VG-LV, a dash inside either doubled. */
function mapperName(name: string): { vg: string; lv: string } | undefined {
  for (let i = 1; i < name.length - 1; i++) {
    if (name[i] !== '-') continue;
    if (name[i + 1] === '-') {
      i++;
      continue;
    }
    return { vg: name.slice(0, i).replace(/--/g, '-'), lv: name.slice(i + 1).replace(/--/g, '-') };
  }
  return undefined;
}

const strip = (value: string): string => value.replace(/^"(.*)"$/, '$1');
const same = (a: string | undefined, b: string): boolean => a !== undefined && a.toLowerCase() === b.toLowerCase();

/** A tag spec (UUID=…, or its /dev/disk/by-* link) as [tag, value]. */
function tagOf(spec: string): [string, string] | undefined {
  const tag = /^(UUID|LABEL|PARTUUID|PARTLABEL)=(.*)$/.exec(spec);
  if (tag) return [tag[1], strip(tag[2])];
  const link = /^\/dev\/disk\/by-(uuid|label|partuuid|partlabel)\/(.+)$/.exec(spec);
  // udev escapes a blank in a link's name as \x20.
  const name = link?.[2].replace(/\\x([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return link && name ? [link[1].toUpperCase(), name] : undefined;
}

/** A kernel name's partition number on the installer VM's one disk (/dev/vda2 → 2; the whole disk → 0). */
function kernelPartition(spec: string): number | undefined {
  const match = /^\/dev\/(?:[shv]d|xvd)a(\d*)$/.exec(spec) ?? /^\/dev\/(?:nvme0n1|mmcblk0)(?:p(\d+))?$/.exec(spec);
  return match ? Number(match[1] || 0) : undefined;
}

/** The file system an fstab spec names, among those of the disk (devices as the appliance names them). */
export function resolveSpec(spec: string, filesystems: readonly FilesystemInfo[]): FilesystemInfo | undefined {
  const tag = tagOf(spec);
  if (tag) {
    const [name, value] = tag;
    if (!value) return undefined;
    if (name === 'UUID') return filesystems.find((fs) => same(fs.uuid, value));
    if (name === 'LABEL') return filesystems.find((fs) => fs.label === value);
    if (name === 'PARTUUID') return filesystems.find((fs) => same(fs.partuuid, value));
    return filesystems.find((fs) => fs.partlabel === value);
  }
  const mapper = /^\/dev\/mapper\/(.+)$/.exec(spec);
  const volume = mapper ? mapperName(mapper[1]) : undefined;
  if (volume) return filesystems.find((fs) => fs.device === `/dev/${volume.vg}/${volume.lv}`);
  const number = kernelPartition(spec);
  if (number !== undefined) {
    return filesystems.find((fs) =>
      (number === 0 ? /^\/dev\/sd[a-z]+$/ : new RegExp(`^/dev/sd[a-z]+${number}$`)).test(fs.device),
    );
  }
  return filesystems.find((fs) => fs.device === spec);
}

/** The Btrfs subvolume an entry's options name (subvol=@, subvol=/@), or subvolid=N as mount takes it. */
export function btrfsSubvolumeOption(options: readonly string[]): string | undefined {
  const subvol = options.find((option) => option.startsWith('subvol='));
  if (subvol) return `subvol=${subvol.slice('subvol='.length).replace(/^\/+/, '')}`;
  return options.find((option) => /^subvolid=\d+$/.test(option));
}
