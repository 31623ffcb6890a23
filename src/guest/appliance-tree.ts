import { join } from 'node:path';
import type { Appliance } from './appliance.js';
import type { BuildContext } from '../context/build-context.js';
import type { EntryKind, TreeAccess, TreeEntry } from './guest-tree.js';

/** st_mode's file type bits. */
const S_IFMT = 0o170000;
const KINDS: Record<number, EntryKind> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'link' };

function kindOfMode(mode: number): EntryKind {
  return KINDS[mode & S_IFMT] ?? 'other';
}

/** The st_mode, st_size (and st_ino, -1 for a missing entry) of each struct lstatns/lstatnslist printed, in order. */
function parseStats(text: string): Array<{ mode: number; ino: number; size: number }> {
  const stats: Array<{ mode: number; ino: number; size: number }> = [];
  for (const line of text.split('\n')) {
    const ino = /^\s*st_ino: (-?\d+)$/.exec(line);
    if (ino) stats.push({ mode: 0, ino: Number(ino[1]), size: 0 });
    const mode = /^\s*st_mode: (\d+)$/.exec(line);
    if (mode && stats.length) stats[stats.length - 1].mode = Number(mode[1]);
    const size = /^\s*st_size: (\d+)$/.exec(line);
    if (size && stats.length) stats[stats.length - 1].size = Number(size[1]);
  }
  return stats;
}

/** A name guestfish's string-list syntax passes through as it is (no blank, quote or backslash). */
const PLAIN_NAME = /^[A-Za-z0-9._+@,:=%-]+$/;
const LIST_CHUNK = 64;

/**
 * The guest's tree as the appliance has it mounted: lstatns and readlink
 * (never following), ls0 to a private host file (names may hold anything but
 * a NUL), download to a private host file, rm-rf, truncate. Every path is
 * inside the appliance, so nothing the guest holds can reach a host file.
 */
type ToAppliance = (path: string) => string;
type LstatInfo = { kind: EntryKind; target: string; size: number };

/** What was read of the tree: lstat's answers by guest path, good while `generation` is the same. */
class TreeCache {
  private kinds = new Map<string, LstatInfo>();
  private seen = -1;

  constructor(private readonly generation: () => number) {}

  private current(): Map<string, LstatInfo> {
    if (this.seen !== this.generation()) {
      this.kinds = new Map();
      this.seen = this.generation();
    }
    return this.kinds;
  }

  get(path: string): LstatInfo | undefined {
    return this.current().get(path);
  }

  set(path: string, info: LstatInfo): void {
    this.current().set(path, info);
  }

  /** A path removed: it and everything below it are gone. */
  removed(path: string): void {
    const kinds = this.current();
    for (const key of [...kinds.keys()]) if (key === path || key.startsWith(`${path}/`)) kinds.delete(key);
    kinds.set(path, { kind: 'missing', target: '', size: 0 });
  }
}

async function lstatIn(appliance: Appliance, guest: ToAppliance, path: string): Promise<LstatInfo> {
  const stats = parseStats((await appliance.probePath('lstatns', guest(path))) ?? '');
  if (!stats.length || stats[0].ino < 0) return { kind: 'missing', target: '', size: 0 };
  const kind = kindOfMode(stats[0].mode);
  const target = kind === 'link' ? ((await appliance.probePath('readlink', guest(path))) ?? '').trim() : '';
  return { kind, target, size: stats[0].size };
}

/** The lstat kinds of a folder's entries: lstatnslist in chunks for plain names, one lstatns for any other. */
async function kindsIn(appliance: Appliance, guest: ToAppliance, dir: string, names: string[]): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const plain = names.filter((name) => PLAIN_NAME.test(name));
  for (let i = 0; i < plain.length; i += LIST_CHUNK) {
    const chunk = plain.slice(i, i + LIST_CHUNK);
    const stats = parseStats((await appliance.probePath('lstatnslist', guest(dir), chunk.join(' '))) ?? '');
    chunk.forEach((name, j) => {
      const stat = stats[j];
      if (stat && stat.ino >= 0) entries.push({ name, kind: kindOfMode(stat.mode), size: stat.size });
    });
  }
  for (const name of names.filter((name) => !PLAIN_NAME.test(name))) {
    const { kind, size } = await lstatIn(appliance, guest, dir ? `${dir}/${name}` : name);
    if (kind !== 'missing') entries.push({ name, kind, size });
  }
  return entries;
}

/**
 * The tree through the appliance; `guest` maps a guest path onto where the
 * appliance has it mounted (the installed system's mount table).
 */
export async function applianceTree(
  ctx: BuildContext,
  appliance: Appliance,
  scratch: string,
  mounts: { map: ToAppliance; generation: number },
): Promise<TreeAccess> {
  const { host } = ctx;
  const guest: ToAppliance = (path) => mounts.map(path);
  const cache = new TreeCache(() => mounts.generation);
  let counter = 0;
  const hostFile = (): string => join(scratch, `out-${++counter}`);
  const takeFile = async (path: string): Promise<Buffer> => {
    const content = await host.readFile(path);
    await host.remove(path);
    return content;
  };
  return {
    async lstat(path) {
      const known = cache.get(path);
      if (known && !(known.kind === 'link' && !known.target)) return known;
      const info = await lstatIn(appliance, guest, path);
      cache.set(path, info);
      return info;
    },
    async list(dir) {
      const out = hostFile();
      if ((await appliance.probePath('ls0', guest(dir), out)) === undefined) return [];
      const names = (await takeFile(out))
        .toString('utf8')
        .split('\0')
        .filter((name) => name !== '' && name !== '.' && name !== '..');
      const entries = await kindsIn(appliance, guest, dir, names);
      // A symlink's target is read when it is asked for.
      for (const entry of entries)
        cache.set(dir ? `${dir}/${entry.name}` : entry.name, { kind: entry.kind, target: '', size: entry.size ?? 0 });
      return entries;
    },
    async read(path) {
      const out = hostFile();
      if ((await appliance.probePath('download', guest(path), out)) === undefined) return undefined;
      return (await takeFile(out)).toString('utf8');
    },
    async copyOut(path, to) {
      await appliance.call('download', [guest(path), to], { quiet: true });
    },
    async remove(path) {
      await appliance.must('rm-rf', guest(path));
      cache.removed(path);
    },
    async empty(path) {
      await appliance.must('truncate', guest(path));
    },
  };
}
