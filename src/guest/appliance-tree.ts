import { join } from 'node:path';
import type { Appliance } from './appliance.js';
import type { BuildContext } from '../context/build-context.js';
import { ApplianceError } from './appliance.js';
import { runScript, shellQuote } from './appliance-shell.js';
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

/** What was read of the tree: lstat answers and folder listings by guest path, good while `generation` holds. */
class TreeCache {
  private kinds = new Map<string, LstatInfo>();
  private listings = new Map<string, TreeEntry[]>();
  private seen = -1;

  constructor(private readonly generation: () => number) {}

  private current(): void {
    if (this.seen !== this.generation()) {
      this.kinds = new Map();
      this.listings = new Map();
      this.seen = this.generation();
    }
  }

  get(path: string): LstatInfo | undefined {
    this.current();
    return this.kinds.get(path);
  }

  set(path: string, info: LstatInfo): void {
    this.current();
    this.kinds.set(path, info);
  }

  listing(dir: string): TreeEntry[] | undefined {
    this.current();
    return this.listings.get(dir);
  }

  setListing(dir: string, entries: TreeEntry[]): void {
    this.current();
    this.listings.set(dir, entries);
  }

  /** A path removed: it and everything below it are gone, and its folder's listing lacks it. */
  removed(path: string): void {
    this.current();
    const below = (key: string): boolean => key === path || key.startsWith(`${path}/`);
    for (const key of [...this.kinds.keys()]) if (below(key)) this.kinds.delete(key);
    for (const key of [...this.listings.keys()]) if (below(key)) this.listings.delete(key);
    this.kinds.set(path, { kind: 'missing', target: '', size: 0 });
    const { dir, name } = split(path);
    const listing = this.listings.get(dir);
    if (listing)
      this.listings.set(
        dir,
        listing.filter((entry) => entry.name !== name),
      );
  }

  /** A file emptied: its size is 0. */
  emptied(path: string): void {
    this.current();
    const known = this.kinds.get(path);
    if (known) this.kinds.set(path, { ...known, size: 0 });
    const { dir, name } = split(path);
    const listing = this.listings.get(dir);
    if (listing)
      this.listings.set(
        dir,
        listing.map((entry) => (entry.name === name ? { ...entry, size: 0 } : entry)),
      );
  }
}

const split = (path: string): { dir: string; name: string } => {
  const slash = path.lastIndexOf('/');
  return { dir: slash < 0 ? '' : path.slice(0, slash), name: path.slice(slash + 1) };
};

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

/** Where libguestfs mounts what its calls call `/`, in the appliance's own shell. */
const SYSROOT = '/sysroot';
const FIND_KINDS: Record<string, EntryKind> = { f: 'file', d: 'dir', l: 'link' };
const MISSING: LstatInfo = { kind: 'missing', target: '', size: 0 };

/** Each folder's own lstat and its entries', as NUL-separated records: index, depth, kind, size, name, target. */
function surveyScript(paths: readonly string[]): string {
  return [
    'list() { if [ -e "$2" ] || [ -L "$2" ]; then',
    '  find "$2" -maxdepth 1 -printf "$1\\0%d\\0%y\\0%s\\0%f\\0%l\\0" || exit 1; fi; }',
    ...paths.map((path, i) => `list ${i} ${shellQuote(`${SYSROOT}${path}`)}`),
  ].join('\n');
}

interface Surveyed {
  self?: LstatInfo;
  entries: Array<{ name: string; info: LstatInfo }>;
}

/** The survey's records, checked as untrusted (numbers are numbers, indexes in range, names plain). */
function parseSurvey(out: Buffer, count: number): Surveyed[] {
  const found: Surveyed[] = Array.from({ length: count }, () => ({ entries: [] }));
  const fields = out.toString('utf8').split('\0');
  if (fields.length % 6 !== 1 || fields[fields.length - 1] !== '')
    throw new ApplianceError('the survey of the guest folders printed a broken listing');
  for (let i = 0; i + 6 <= fields.length; i += 6) {
    const [index, depth, type, size, name, target] = fields.slice(i, i + 6);
    const at = found[Number(index)];
    if (!/^\d+$/.test(index) || !at || !/^[01]$/.test(depth) || !/^\d+$/.test(size))
      throw new ApplianceError('the survey of the guest folders printed a broken record');
    const info: LstatInfo = {
      kind: FIND_KINDS[type] ?? 'other',
      target: type === 'l' ? target : '',
      size: Number(size),
    };
    if (depth === '0') at.self = info;
    else if (name && name !== '.' && name !== '..' && !name.includes('/')) at.entries.push({ name, info });
  }
  return found;
}

/** The folders asked for and every folder on their way, parents first ('' is the root). */
function withParents(dirs: readonly string[]): string[] {
  const wanted = new Set<string>(['']);
  for (const dir of dirs) {
    const parts = dir.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) wanted.add(parts.slice(0, i).join('/'));
  }
  return [...wanted].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
}

/**
 * Read the folders `dirs` and those on their way with one script (their own
 * lstat and their entries'). A folder counts only when every folder on its
 * way is one (no symlink): then the shell's walk to it took the path lstat
 * would have. Anything else is left for lstat and list to answer.
 */
async function survey(appliance: Appliance, guest: ToAppliance, cache: TreeCache, dirs: readonly string[]) {
  const list = withParents(dirs);
  const paths = list.map(guest);
  const found = parseSurvey(await runScript(appliance, 'a survey of guest folders', surveyScript(paths)), list.length);
  const folders = new Set<string>();
  list.forEach((dir, i) => {
    if (dir !== '' && !folders.has(split(dir).dir)) return;
    const self = found[i].self ?? MISSING;
    if (dir !== '') cache.set(dir, self);
    if (self.kind !== 'dir') return;
    folders.add(dir);
    const entries: TreeEntry[] = [];
    for (const { name, info } of found[i].entries) {
      entries.push({ name, kind: info.kind, size: info.size });
      const path = dir ? `${dir}/${name}` : name;
      // A mount point shows the folder under it here; lstat answers for what is mounted there.
      if (guest(path) === `${paths[i] === '/' ? '' : paths[i]}/${name}`) cache.set(path, info);
    }
    cache.setListing(dir, entries);
  });
}

/**
 * The tree through the appliance; `guest` maps a guest path onto where the
 * appliance has it mounted (the installed system's mount table).
 */
// Long: one short method for each of TreeAccess's, as a table would be.
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
      const known = cache.listing(dir);
      if (known) return known;
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
      cache.setListing(dir, entries);
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
    async removeAll(paths) {
      // What rm-rf does for each (rm -rf on the path under the sysroot), for all of them in one go.
      const script = `exec rm -rf -- ${paths.map((path) => shellQuote(`${SYSROOT}${guest(path)}`)).join(' ')}`;
      // Logged as what runs in the appliance's shell.
      ctx.reporter.command(['rm', '-rf', '--', ...paths.map((path) => `${SYSROOT}${guest(path)}`)]);
      await runScript(appliance, `removing ${paths.length} paths`, script);
      for (const path of paths) cache.removed(path);
    },
    async empty(path) {
      await appliance.must('truncate', guest(path));
      cache.emptied(path);
    },
    async survey(dirs) {
      await survey(appliance, guest, cache, dirs);
    },
  };
}
