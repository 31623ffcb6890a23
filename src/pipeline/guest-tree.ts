import { constants } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from '../host/host.js';

/**
 * The installed system's mounted tree, read as untrusted content: nothing in
 * it is followed out of it. Every path is resolved component by component
 * with lstat, a symlink inside it as the guest itself would see it (an
 * absolute target and a `..` at the top stay inside its root, as
 * openat2's RESOLVE_IN_ROOT), so that what the scrub lists, prints and
 * removes is a path with no symlink on the way — the host's files are out of
 * reach whatever the guest holds.
 */

export type EntryKind = 'file' | 'dir' | 'link' | 'other' | 'missing';

export interface TreeEntry {
  name: string;
  kind: EntryKind;
}

/** How the tree is read: in-process as root, through `sudo -n find`/`cat` for a normal user. */
interface TreeReader {
  lstat(path: string): Promise<{ kind: EntryKind; target: string }>;
  list(dir: string): Promise<TreeEntry[]>;
  /** The content of a regular file; undefined when it is not one (checked on the open file). */
  read(path: string): Promise<string | undefined>;
}

/** A symlink chain longer than this is a loop (Linux's MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

export type Resolution = { path: string } | { missing: true; why?: string };

export class GuestTree {
  private readonly reader: TreeReader;

  constructor(
    readonly root: string,
    private readonly host: Host,
  ) {
    this.reader = host.isRoot ? directReader : sudoReader(host);
  }

  /** The absolute host path of a guest path (one that resolve() returned). */
  hostPath(guestPath: string): string {
    return join(this.root, guestPath);
  }

  /**
   * Resolve a guest folder (a path relative to its root) inside the root,
   * every symlink followed as the guest would: the path returned is a folder
   * with no symlink on the way (its entries, symlinks among them, are what
   * list() gives).
   */
  async resolveFolder(path: string): Promise<Resolution> {
    let pending = path.split('/').filter((part) => part !== '' && part !== '.');
    let resolved: string[] = [];
    let links = 0;
    let throughLink = false;
    while (pending.length) {
      const [name, ...rest] = pending;
      pending = rest;
      if (name === '..') {
        resolved.pop();
        continue;
      }
      const candidate = [...resolved, name];
      const info = await this.reader.lstat(join(this.root, ...candidate));
      if (info.kind === 'link') {
        if (++links > MAX_SYMLINKS) return { missing: true, why: `more than ${MAX_SYMLINKS} symlinks (a loop)` };
        throughLink = true;
        if (info.target.startsWith('/')) resolved = [];
        pending = [...info.target.split('/').filter((part) => part !== '' && part !== '.'), ...pending];
        continue;
      }
      if (info.kind !== 'dir') {
        const why = `/${candidate.join('/')} is ${info.kind === 'missing' ? 'missing' : 'not a folder'}`;
        return throughLink ? { missing: true, why: `${why} (reached through a symlink)` } : { missing: true };
      }
      resolved = candidate;
    }
    return { path: resolved.join('/') };
  }

  /**
   * Resolve a guest file as the guest would open it: its folder with
   * resolveFolder, and a symlink at its own name followed the same way. The
   * path returned is a regular file with no symlink on the way.
   */
  async resolveFile(path: string): Promise<Resolution> {
    let current = path;
    for (let links = 0; links <= MAX_SYMLINKS; links++) {
      const slash = current.lastIndexOf('/');
      const folder = await this.resolveFolder(slash < 0 ? '' : current.slice(0, slash));
      if ('missing' in folder) return folder;
      const name = current.slice(slash + 1);
      if (name === '' || name === '.' || name === '..') return { missing: true, why: `/${path} is not a file` };
      const candidate = folder.path ? `${folder.path}/${name}` : name;
      const info = await this.kind(candidate);
      if (info.kind === 'file') return { path: candidate };
      if (info.kind !== 'link') {
        return info.kind === 'missing'
          ? { missing: true }
          : { missing: true, why: `/${candidate} is not a regular file` };
      }
      current = info.target.startsWith('/') ? info.target : `${folder.path}/${info.target}`;
    }
    return { missing: true, why: `more than ${MAX_SYMLINKS} symlinks on the way to /${path} (a loop)` };
  }

  /** The entries of a resolved folder (lstat types: a symlink is a link, never what it points at). */
  list(guestDir: string): Promise<TreeEntry[]> {
    return this.reader.list(this.hostPath(guestDir));
  }

  kind(guestPath: string): Promise<{ kind: EntryKind; target: string }> {
    return this.reader.lstat(this.hostPath(guestPath));
  }

  /** A resolved regular file's content, or undefined when it is no regular file. */
  read(guestPath: string): Promise<string | undefined> {
    return this.reader.read(this.hostPath(guestPath));
  }

  /**
   * Empty a resolved regular file (checked here, on the path with no symlink
   * on the way, so truncate cannot be led elsewhere), keeping its owner and mode.
   */
  async empty(guestPath: string): Promise<void> {
    if ((await this.kind(guestPath)).kind !== 'file')
      throw new Error(`refusing to empty /${guestPath}: not a regular file`);
    await this.host.run(['truncate', '--no-create', '--size=0', '--', this.hostPath(guestPath)], {
      root: true,
      quiet: this.host.isRoot,
    });
  }

  /**
   * Remove a resolved path: a symlink as a link, a folder with what it holds
   * (rm does not follow symlinks below it, and the path has none on the way).
   */
  async remove(guestPath: string): Promise<void> {
    if (guestPath === '') throw new Error('refusing to remove the root of the installed system');
    await this.host.run(['rm', '--recursive', '--force', '--one-file-system', '--', this.hostPath(guestPath)], {
      root: true,
      quiet: this.host.isRoot,
    });
  }
}

function kindOf(stats: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryKind {
  if (stats.isSymbolicLink()) return 'link';
  if (stats.isDirectory()) return 'dir';
  return stats.isFile() ? 'file' : 'other';
}

const directReader: TreeReader = {
  async lstat(path) {
    try {
      const stats = await lstat(path);
      const kind = kindOf(stats);
      return { kind, target: kind === 'link' ? await readlink(path) : '' };
    } catch {
      return { kind: 'missing', target: '' };
    }
  },
  async list(dir) {
    try {
      return (await readdir(dir, { withFileTypes: true })).map((entry) => ({ name: entry.name, kind: kindOf(entry) }));
    } catch {
      return [];
    }
  },
  async read(path) {
    // O_NOFOLLOW: a symlink is refused by the kernel; O_NONBLOCK: a FIFO does not hang the build.
    const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
      () => undefined,
    );
    if (!file) return undefined;
    try {
      return (await file.stat()).isFile() ? await file.readFile('utf8') : undefined;
    } finally {
      await file.close();
    }
  },
};

/** find's %y letters (GNU find, -P: never following a symlink). */
const FIND_KINDS: Record<string, EntryKind> = { f: 'file', d: 'dir', l: 'link' };

/** A normal user reads the tree through sudo: `find -P` to lstat and list, `cat` on a verified regular file. */
function sudoReader(host: Host): TreeReader {
  const find = async (args: string[]): Promise<string[] | undefined> => {
    const result = await host.run(['find', '-P', ...args], {
      root: true,
      captureStdout: true,
      quiet: true,
      allowFailure: true,
    });
    return result.exitCode === 0 ? result.stdout.split('\0') : undefined;
  };
  const reader: TreeReader = {
    async lstat(path) {
      const fields = await find([path, '-maxdepth', '0', '-printf', '%y\\0%l\\0']);
      if (!fields || fields.length < 2) return { kind: 'missing', target: '' };
      return { kind: FIND_KINDS[fields[0]] ?? 'other', target: fields[1] };
    },
    async list(dir) {
      const fields = (await find([dir, '-mindepth', '1', '-maxdepth', '1', '-printf', '%y\\0%f\\0'])) ?? [];
      const entries: TreeEntry[] = [];
      for (let i = 0; i + 1 < fields.length; i += 2)
        entries.push({ kind: FIND_KINDS[fields[i]] ?? 'other', name: fields[i + 1] });
      return entries;
    },
    async read(path) {
      // The path has no symlink on the way (resolved) and is a regular file itself: cat cannot be led elsewhere.
      if ((await reader.lstat(path)).kind !== 'file') return undefined;
      return (await host.run(['cat', '--', path], { root: true, captureStdout: true, quiet: true })).stdout;
    },
  };
  return reader;
}
