/**
 * The installed system's tree, read as untrusted content: nothing in it is
 * followed out of it. Every path is resolved component by component with
 * lstat, a symlink inside it as the guest itself would see it (an absolute
 * target and a `..` at the top stay inside its root, as openat2's
 * RESOLVE_IN_ROOT), so that what the scrub lists, prints and removes is a
 * path with no symlink on the way. The tree is reached through a TreeAccess:
 * in a build, the libguestfs appliance that has the guest's file systems
 * mounted (applianceTree), so the host's files are out of reach by
 * construction, and the guest's file systems never meet the host's kernel.
 */

export type EntryKind = 'file' | 'dir' | 'link' | 'other' | 'missing';

export interface TreeEntry {
  name: string;
  kind: EntryKind;
  /** Its size (lstat's st_size: a sparse file's apparent size), where known. */
  size?: number;
}

/** A guest file larger than what the build reads of that kind: refused before a byte is copied. */
export class GuestFileTooLarge extends Error {
  constructor(
    readonly path: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`/${path} is ${size} bytes, more than the ${limit} bytes read of such a file`);
    this.name = 'GuestFileTooLarge';
  }
}

/**
 * What the tree offers, on paths relative to the guest's root ('' is the
 * root) that GuestTree resolved: no symlink on the way, none followed.
 */
export interface TreeAccess {
  /** lstat: what the path is, a symlink's target, a file's size (st_size). */
  lstat(path: string): Promise<{ kind: EntryKind; target: string; size: number }>;
  list(dir: string): Promise<TreeEntry[]>;
  /** The content of a regular file; undefined when it is not one. */
  read(path: string): Promise<string | undefined>;
  /** Copy a regular file out to a host path (a private folder of the build). */
  copyOut(path: string, to: string): Promise<void>;
  /** Remove a path: a symlink as a link, a folder with what it holds. */
  remove(path: string): Promise<void>;
  /** Truncate a regular file to nothing, keeping its owner and mode. */
  empty(path: string): Promise<void>;
  /**
   * Read ahead, in one go, what lstat and list will be asked of these folders
   * and the folders on their way (where the tree has a cheaper way than one
   * path at a time). Nothing is resolved by it: a folder reached through a
   * symlink is left for lstat and list to answer as they would.
   */
  survey?(dirs: readonly string[]): Promise<void>;
  /** Remove several paths, each as remove() would (where the tree has a cheaper way than one at a time). */
  removeAll?(paths: readonly string[]): Promise<void>;
}

/** A symlink chain longer than this is a loop (Linux's MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

export type Resolution = { path: string } | { missing: true; why?: string };

export class GuestTree {
  constructor(private readonly reader: TreeAccess) {}

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
      const info = await this.reader.lstat(candidate.join('/'));
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
    return this.reader.list(guestDir);
  }

  kind(guestPath: string): Promise<{ kind: EntryKind; target: string; size: number }> {
    return this.reader.lstat(guestPath);
  }

  /**
   * A resolved regular file's content, or undefined when it is no regular
   * file; GuestFileTooLarge when it is larger than `maxBytes` (asked before
   * it is read: a sparse file far larger than the disk is never copied).
   */
  async read(guestPath: string, maxBytes: number): Promise<string | undefined> {
    const info = await this.kind(guestPath);
    if (info.kind !== 'file') return undefined;
    if (info.size > maxBytes) throw new GuestFileTooLarge(guestPath, info.size, maxBytes);
    return this.reader.read(guestPath);
  }

  /** Copy a resolved regular file out to a host path of the build's own; at most `maxBytes` (GuestFileTooLarge). */
  async copyOut(guestPath: string, to: string, maxBytes: number): Promise<void> {
    const info = await this.kind(guestPath);
    if (info.kind !== 'file') throw new Error(`refusing to copy /${guestPath}: not a regular file`);
    if (info.size > maxBytes) throw new GuestFileTooLarge(guestPath, info.size, maxBytes);
    await this.reader.copyOut(guestPath, to);
  }

  /**
   * Empty a resolved regular file (checked here, on the path with no symlink
   * on the way, so truncate cannot be led elsewhere), keeping its owner and mode.
   */
  async empty(guestPath: string): Promise<void> {
    if ((await this.kind(guestPath)).kind !== 'file')
      throw new Error(`refusing to empty /${guestPath}: not a regular file`);
    await this.reader.empty(guestPath);
  }

  /**
   * Remove a resolved path: a symlink as a link, a folder with what it holds
   * (rm does not follow symlinks below it, and the path has none on the way).
   */
  async remove(guestPath: string): Promise<void> {
    await this.removeAll([guestPath]);
  }

  /** Remove resolved paths, as remove() does each, at once where the tree can. */
  async removeAll(guestPaths: readonly string[]): Promise<void> {
    if (guestPaths.includes('')) throw new Error('refusing to remove the root of the installed system');
    if (!guestPaths.length) return;
    if (this.reader.removeAll && guestPaths.length > 1) await this.reader.removeAll(guestPaths);
    else for (const path of guestPaths) await this.reader.remove(path);
  }

  /** Read ahead what lstat and list will be asked of these folders (TreeAccess.survey). */
  async survey(dirs: readonly string[]): Promise<void> {
    await this.reader.survey?.(dirs);
  }
}
