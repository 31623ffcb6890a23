import { constants, existsSync } from 'node:fs';
import { copyFile, lstat, open, readdir, readlink, rm, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { EntryKind, TreeAccess } from '../../src/guest/guest-tree.js';

function kindOf(stats: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryKind {
  if (stats.isSymbolicLink()) return 'link';
  if (stats.isDirectory()) return 'dir';
  return stats.isFile() ? 'file' : 'other';
}

/**
 * A folder of this machine standing in for the appliance's mounted guest
 * (what the fast and command tiers read GuestTree over): lstat, readdir,
 * O_NOFOLLOW reads. GuestTree resolves every path before it gets here.
 * What it changes is recorded (`rm PATH`, `truncate PATH`, `copy PATH TO`);
 * a copy goes to a folder that exists only (a recording host's folders do not).
 */
export function localTree(root: string, record: string[] = []): TreeAccess {
  const at = (path: string): string => join(root, path);
  return {
    async lstat(path) {
      try {
        const stats = await lstat(at(path));
        const kind = kindOf(stats);
        return { kind, target: kind === 'link' ? await readlink(at(path)) : '', size: stats.size };
      } catch {
        return { kind: 'missing', target: '', size: 0 };
      }
    },
    async list(dir) {
      try {
        return (await readdir(at(dir), { withFileTypes: true })).map((entry) => ({
          name: entry.name,
          kind: kindOf(entry),
        }));
      } catch {
        return [];
      }
    },
    async read(path) {
      const file = await open(at(path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
        () => undefined,
      );
      if (!file) return undefined;
      try {
        return (await file.stat()).isFile() ? await file.readFile('utf8') : undefined;
      } finally {
        await file.close();
      }
    },
    async copyOut(path, to) {
      record.push(`copy ${path} ${to}`);
      if (existsSync(dirname(to))) await copyFile(at(path), to);
    },
    async remove(path) {
      record.push(`rm ${path}`);
      await rm(at(path), { recursive: true, force: true });
    },
    async empty(path) {
      record.push(`truncate ${path}`);
      await truncate(at(path), 0);
    },
  };
}
