import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import type { RunResult } from '../../src/host/exec.js';
import type { PlannedAnswer } from '../../src/host/recording-host.js';
import { scriptOf, scriptSucceeded } from '../../src/guest/appliance-shell.js';

/**
 * A stand-in for the libguestfs appliance on the recording host (the fast
 * tier runs no VM): it answers `guestfish --remote` commands from a layout
 * description and a folder of this machine holding the installed system's
 * files (every file system mounted in the one folder). What it answers is
 * what guestfish prints; file outputs (ls0, download) go to `files`, which
 * the recording plan's readFile serves. It keeps what is mounted where, so a
 * path reads from the device mounted over it.
 */
export interface FakeLayout {
  table: 'msdos' | 'gpt' | 'none';
  partitions: Array<{ device: string; type: string; size: number }>;
  /** list-filesystems' lines: device → type. */
  filesystems: Record<string, string>;
  uuids?: Record<string, string>;
  labels?: Record<string, string>;
  /**
   * Where each file system is mounted in the installed system (mount point →
   * device): the folder's part at that mount point is what the device holds
   * (the root's, the whole folder). A device not listed reads as empty.
   */
  mountpoints?: Record<string, string>;
  pvs?: string[];
}

export const ONE_EXT4: FakeLayout = {
  table: 'msdos',
  partitions: [{ device: '/dev/sda1', type: '0x83', size: 1 << 30 }],
  filesystems: { '/dev/sda1': 'ext4' },
  uuids: { '/dev/sda1': '11111111-2222-3333-4444-555555555555' },
  mountpoints: { '/': '/dev/sda1' },
};

function stat(path: string): string {
  if (!existsSync(path) && !isLink(path)) return 'st_ino: -1\nst_mode: 0\n';
  const info = lstatSync(path);
  return `st_ino: ${info.ino}\nst_mode: ${info.mode}\nst_size: ${info.size}\n`;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

const failed = (command: string, why: string): Partial<RunResult> => ({
  exitCode: 0,
  lastLines: [`libguestfs: error: ${command}: ${why}`],
});

/** Where a partition starts: the first at 1 MiB, each after the one before. */
function partitionOffset(layout: FakeLayout, device: string): number {
  let offset = 1 << 20;
  for (const partition of layout.partitions) {
    if (partition.device === device) return offset;
    offset += partition.size;
  }
  return offset;
}

/**
 * What the appliance's file system tools print (the scrub's check of free
 * space runs them through `debug sh`): a few free extents of each kind, and
 * for a FAT its boot sector and a table with free clusters (bytes, as `dd` reads them).
 */
function toolOutput(layout: FakeLayout, script: string): string | Buffer {
  if (script.startsWith('dumpe2fs')) return 'Block size:               4096\nGroup 0:\n  Free blocks: 100-199, 300\n';
  if (script.startsWith('xfs_db'))
    return 'agblocks = 1000\nblocksize = 4096\n    agno    agbno      len\n       0       10        5\n       1        3        2\n   from      to extents  blocks    pct\n';
  // The appliance's kernel named the disk sdb (its own disk raced it): lvm prints those names.
  const kernelName = (device: string | undefined): string => (device ?? '').replace(/^\/dev\/sda/, '/dev/sdb');
  if (script.startsWith('readlink -f /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_hd0')) return '/dev/sdb\n';
  if (script.startsWith('lvm pvs')) {
    return `  ${kernelName(layout.pvs?.[0])}|1048576\n`;
  }
  if (script.startsWith('lvm lvs')) {
    const volumes = Object.keys(layout.filesystems).filter((device) => device.split('/').length === 4);
    return `${volumes
      .map((device, i) => {
        const [, , vg, lv] = device.split('/');
        return `  ${vg}|${lv}|0|67108864|linear|${kernelName(layout.pvs?.[0])}:${i * 16}-${i * 16 + 15}|4194304\n`;
      })
      .join('')}`;
  }
  if (script.includes('dump-super')) return 'sectorsize\t\t4096\nnodesize\t\t16384\nnum_devices\t\t1\n';
  if (script.includes('dump-tree -t chunk'))
    return [
      '\titem 1 key (FIRST_CHUNK_TREE CHUNK_ITEM 13631488) itemoff 16105 itemsize 80',
      '\t\tlength 8388608 owner 2 stripe_len 65536 type DATA|single',
      '\t\t\tstripe 0 devid 1 offset 13631488',
      '',
    ].join('\n');
  if (script.includes('dump-tree -t extent'))
    return [
      '\titem 0 key (13631488 BLOCK_GROUP_ITEM 8388608) itemoff 16259 itemsize 24',
      '\titem 1 key (13631488 EXTENT_ITEM 4096) itemoff 16259 itemsize 24',
      '',
    ].join('\n');
  const dd = /dd if=\S+ bs=512 skip=(\d+) count=(\d+)/.exec(script);
  if (dd) {
    const bytes = Buffer.alloc(Number(dd[2]) * 512);
    if (dd[1] === '0') {
      // A FAT16 boot sector: 512-byte sectors, 4 a cluster, 1 reserved, 2 FATs of 64 sectors, 512 root entries.
      bytes.writeUInt16LE(512, 11);
      bytes[13] = 4;
      bytes.writeUInt16LE(1, 14);
      bytes[16] = 2;
      bytes.writeUInt16LE(512, 17);
      bytes.writeUInt16LE(0, 19);
      bytes.writeUInt32LE(65536, 32);
      bytes.writeUInt16LE(64, 22);
      bytes[510] = 0x55;
      bytes[511] = 0xaa;
    } else bytes.fill(0xff, 0, 40);
    return bytes;
  }
  return '';
}

/**
 * The appliance's shell running a script (appliance-shell.ts): the status and
 * size line, no error output, and the whole output base64-encoded in one
 * piece. The file system tools' script runs each as `run NAME 'COMMAND'`,
 * each one's output after a `== NAME` line; the FAT is read by one `dd`.
 */
function scriptReply(layout: FakeLayout, command: string, at: (path: string) => string): string {
  const script = scriptOf(command);
  if (script === undefined) return '';
  const unquote = (quoted: string): string => quoted.replace(/'\\''/g, "'").replace(/^\/sysroot/, '');
  const remove = /^exec rm -rf -- (.*)$/.exec(script);
  if (remove) {
    for (const [, path] of remove[1].matchAll(/'((?:[^']|'\\'')*)'/g))
      rmSync(at(unquote(path)), { recursive: true, force: true });
    return scriptSucceeded('');
  }
  const lists = [...script.matchAll(/^list (\d+) '(.*)'$/gm)];
  if (lists.length) {
    return scriptSucceeded(lists.map(([, index, path]) => findRecords(index, at(unquote(path)))).join(''));
  }
  const runs = [...script.matchAll(/^run (\S+) '(.*)'$/gm)];
  const output = runs.length
    ? Buffer.from(
        runs
          .map(([, name, tool]) => `== ${name}\n${toolOutput(layout, tool.replace(/'\\''/g, "'")).toString()}`)
          .join(''),
      )
    : Buffer.from(toolOutput(layout, script));
  return scriptSucceeded(output);
}

/** What `find PATH -maxdepth 1 -printf "INDEX\\0%d\\0%y\\0%s\\0%f\\0%l\\0"` prints (nothing for a missing path). */
function findRecords(index: string, path: string): string {
  const record = (depth: number, at: string, name: string): string => {
    const stat = lstatSync(at);
    const type = stat.isFile() ? 'f' : stat.isDirectory() ? 'd' : stat.isSymbolicLink() ? 'l' : 'p';
    const target = stat.isSymbolicLink() ? readlinkSync(at) : '';
    return [index, depth, type, stat.size, name, target, ''].join('\0');
  };
  if (!existsSync(path) && !isLink(path)) return '';
  const own = record(0, path, basename(path));
  if (!lstatSync(path).isDirectory()) return own;
  return (
    own +
    readdirSync(path)
      .map((name) => record(1, join(path, name), name))
      .join('')
  );
}

/** blkid's tags for a device: its file system's TYPE and UUID, a partition's PART_ENTRY_* too. */
function blkidTags(layout: FakeLayout, device: string): string {
  const type = layout.pvs?.includes(device) ? 'LVM2_member' : layout.filesystems[device];
  const partition = layout.partitions.find((p) => p.device === device);
  const tags: Array<[string, string | undefined]> = [
    ['UUID', layout.uuids?.[device]],
    ['LABEL', layout.labels?.[device]],
    ['TYPE', type === 'unknown' ? undefined : type],
    ['PART_ENTRY_TYPE', partition?.type.toLowerCase()],
    ['PART_ENTRY_NUMBER', partition ? /(\d+)$/.exec(device)?.[1] : undefined],
    ['PART_ENTRY_SIZE', partition ? String(partition.size / 512) : undefined],
    ['PART_ENTRY_OFFSET', partition ? String(partitionOffset(layout, device) / 512) : undefined],
  ];
  return tags
    .filter(([, value]) => value)
    .map(([tag, value]) => `${tag}: ${value}\n`)
    .join('');
}

/**
 * The host path of a guest path: the device mounted over it (the longest
 * mount point holding it) shows the folder's part at that device's own mount
 * point; a device that is nowhere in the installed system shows an empty folder.
 */
function hostPath(layout: FakeLayout, root: string, mounted: Map<string, string>, path: string): string {
  const clean = `/${path.replace(/^\/+/, '')}`;
  const over = [...mounted.keys()]
    .filter((point) => point === '/' || clean === point || clean.startsWith(`${point}/`))
    .sort((a, b) => b.length - a.length)[0];
  if (!over) return join(root, '.nothing-mounted', clean);
  const home = Object.entries(layout.mountpoints ?? {}).find(([, device]) => device === mounted.get(over))?.[0];
  if (!home) return join(root, '.empty-device', clean);
  return join(root, home, clean.slice(over === '/' ? 0 : over.length));
}

// Long: one case a guestfish command, as a table would be.
function answer(
  layout: FakeLayout,
  root: string,
  state: { files: Map<string, Buffer>; mounted: Map<string, string> },
  argv: readonly string[],
): Partial<RunResult> {
  const { files, mounted } = state;
  const [raw, ...args] = argv.slice(argv.indexOf('--') + 1);
  const command = raw.replace(/^-/, '');
  const at = (path: string): string => hostPath(layout, root, mounted, path);
  const out = (stdout: string): Partial<RunResult> => ({ stdout });
  switch (command) {
    case 'list-devices':
      return out('/dev/sda\n');
    case 'blockdev-getsize64':
      return out(`${layout.partitions.find((p) => p.device === args[0])?.size ?? 2 * 2 ** 30}\n`);
    case 'part-get-parttype':
      return layout.table === 'none' ? failed(command, 'unrecognised disk label') : out(`${layout.table}\n`);
    case 'list-partitions':
      return out(layout.partitions.map((p) => `${p.device}\n`).join(''));
    case 'blkid':
      return out(blkidTags(layout, args[0]));
    case 'lvs':
      return out(
        Object.keys(layout.filesystems)
          .filter((device) => !/^\/dev\/sd[a-z]+\d*$/.test(device))
          .map((device) => `${device}\n`)
          .join(''),
      );
    case 'mount':
    case 'mount-ro':
      mounted.set(args[1], args[0]);
      return {};
    case 'mount-options':
      mounted.set(args[2], args[1]);
      return {};
    case 'umount-all':
      mounted.clear();
      return {};
    case 'vfs-uuid':
      return out(`${layout.uuids?.[args[0]] ?? ''}\n`);
    case 'vfs-label':
      return out('\n');
    case 'lstatns':
      return existsSync(at(args[0])) || isLink(at(args[0]))
        ? out(stat(at(args[0])))
        : failed(command, `${args[0]}: No such file or directory`);
    case 'lstatnslist':
      return out(
        args[1]
          .split(' ')
          .map((name) => `[0] = {\n${stat(join(at(args[0]), name))}}\n`)
          .join(''),
      );
    case 'readlink':
      return out(`${readlinkSync(at(args[0]))}\n`);
    case 'ls0':
      try {
        files.set(
          args[1],
          Buffer.from(
            readdirSync(at(args[0]))
              .map((name) => `${name}\0`)
              .join(''),
          ),
        );
        return {};
      } catch {
        return failed(command, `opendir: ${args[0]}: Not a directory`);
      }
    case 'download':
      try {
        const content = readFileSync(at(args[0]));
        if (args[1].includes('image-factory-guest.')) files.set(args[1], content);
        else writeFileSync(args[1], content);
        return {};
      } catch {
        return failed(command, `${args[0]}: No such file or directory`);
      }
    case 'rm-rf':
      rmSync(at(args[0]), { recursive: true, force: true });
      return {};
    case 'debug':
      return out(scriptReply(layout, args[1] ?? '', at));
    case 'truncate':
      truncateSync(at(args[0]), 0);
      return {};
    default:
      return {};
  }
}

/** The plan's answer for every remote guestfish command, and what readFile serves. */
export function fakeAppliance(
  root: string,
  layout: FakeLayout = ONE_EXT4,
): { answer: PlannedAnswer; readFile: (path: string) => Buffer | undefined } {
  const files = new Map<string, Buffer>();
  const mounted = new Map<string, string>();
  return {
    answer: {
      match: (argv) => argv[0] === 'guestfish' && argv[1]?.startsWith('--remote=') && argv[3] !== 'exit',
      respond: (argv) => answer(layout, root, { files, mounted }, argv),
    },
    readFile: (path) => files.get(path),
  };
}
