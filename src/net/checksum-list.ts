/**
 * The checksum lists distributions publish next to their installer files,
 * read into `name -> SHA-256`: sha256sum's lines (`<hex>  ./path`, Debian's
 * and Ubuntu's SHA256SUMS, openSUSE's *.sha256), BSD-style lines
 * (`SHA256 (path) = <hex>`, the CHECKSUM files of Fedora and the Enterprise
 * Linux distributions), and the SHA256 section of a Debian release file
 * (` <hex> <size> path`). Other lines (comments, a clearsigned file's armour)
 * are not entries.
 */

const GNU_LINE = /^([0-9a-fA-F]{64}) [ *](.+)$/;
const BSD_LINE = /^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$/;
const RELEASE_LINE = /^ ([0-9a-fA-F]{64}) +[0-9]+ +(\S+)$/;

/** A list's entries; a name listed twice with different sums is refused (which one would be meant?). */
export class ChecksumList {
  private readonly entries = new Map<string, string>();
  private readonly conflicts = new Set<string>();

  add(name: string, sha256: string): void {
    const key = normalizeName(name);
    const value = sha256.toLowerCase();
    const known = this.entries.get(key);
    if (known !== undefined && known !== value) this.conflicts.add(key);
    this.entries.set(key, value);
  }

  /** The SHA-256 listed for `name` (`./` and leading `*` ignored), or why there is none. */
  lookup(name: string): { sha256: string } | { problem: string } {
    const key = normalizeName(name);
    if (this.conflicts.has(key)) return { problem: `lists ${key} more than once, with different SHA-256 sums` };
    const sha256 = this.entries.get(key);
    return sha256 === undefined ? { problem: `does not list ${key}` } : { sha256 };
  }

  get size(): number {
    return this.entries.size;
  }
}

/** `./a/b`, `a/b` and `*a/b` name the same file. */
export function normalizeName(name: string): string {
  return name
    .trim()
    .replace(/^\*/, '')
    .replace(/^(\.\/)+/, '');
}

/** A sha256sum or BSD-style list (both forms may mix, as some CHECKSUM files do). */
export function parseChecksumList(text: string): ChecksumList {
  const list = new ChecksumList();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const gnu = GNU_LINE.exec(line);
    if (gnu) {
      list.add(gnu[2], gnu[1]);
      continue;
    }
    const bsd = BSD_LINE.exec(line);
    if (bsd) list.add(bsd[1], bsd[2]);
  }
  return list;
}

/** The `SHA256:` section of a Debian Release/InRelease file: paths relative to the file's folder. */
export function parseReleaseFile(text: string): ChecksumList {
  const list = new ChecksumList();
  let inSection = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line.startsWith(' ')) {
      inSection = line.trim() === 'SHA256:';
      continue;
    }
    const match = inSection ? RELEASE_LINE.exec(line) : null;
    if (match) list.add(match[2], match[1]);
  }
  return list;
}

/**
 * The name a file goes by in a checksum list: its path below the list's
 * folder (the host is not compared, so a mirror of the same layout serves),
 * or, when it is not below it, its last path component.
 */
export function nameInList(filePath: string, listPath: string): string {
  const folder = listPath.slice(0, listPath.lastIndexOf('/') + 1);
  if (folder !== '' && filePath.startsWith(folder) && filePath.length > folder.length) {
    return filePath.slice(folder.length);
  }
  return filePath.slice(filePath.lastIndexOf('/') + 1);
}
