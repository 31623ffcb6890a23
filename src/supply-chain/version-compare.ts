/**
 * Package version order as each package manager defines it: dpkg's
 * (deb-version(7), lib/dpkg/version.c) and rpm's (rpmvercmp in
 * rpmio/rpmvercmp.c, with epoch and release as rpmVersionCompare does).
 * Each returns a negative number, 0 or a positive number.
 */

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

/** dpkg's weight of a character: `~` before the end, the end before letters, letters before the rest. */
function dpkgOrder(c: string): number {
  if (c === '') return 0;
  if (isDigit(c)) return 0;
  if (isAlpha(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

/** dpkg's verrevcmp: alternating non-digit and digit parts, the digit parts compared as numbers. */
function dpkgPartCompare(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const at = (text: string, index: number): string => text.charAt(index);
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(at(a, i))) || (j < b.length && !isDigit(at(b, j)))) {
      const difference = dpkgOrder(at(a, i)) - dpkgOrder(at(b, j));
      if (difference !== 0) return difference;
      i++;
      j++;
    }
    while (at(a, i) === '0') i++;
    while (at(b, j) === '0') j++;
    let firstDifference = 0;
    while (isDigit(at(a, i)) && isDigit(at(b, j))) {
      if (firstDifference === 0) firstDifference = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(at(a, i))) return 1;
    if (isDigit(at(b, j))) return -1;
    if (firstDifference !== 0) return firstDifference;
  }
  return 0;
}

/** [epoch:]upstream[-revision] as dpkg splits it: the epoch before the first `:`, the revision after the last `-`. */
function splitDebVersion(version: string): { epoch: number; upstream: string; revision: string } {
  const text = version.trim();
  const colon = text.indexOf(':');
  const epoch = colon > 0 && /^\d+$/.test(text.slice(0, colon)) ? Number(text.slice(0, colon)) : 0;
  const rest = colon > 0 ? text.slice(colon + 1) : text;
  const hyphen = rest.lastIndexOf('-');
  return hyphen >= 0
    ? { epoch, upstream: rest.slice(0, hyphen), revision: rest.slice(hyphen + 1) }
    : { epoch, upstream: rest, revision: '' };
}

/** Compare two Debian package versions as `dpkg --compare-versions` does. */
export function compareDebVersions(a: string, b: string): number {
  const left = splitDebVersion(a);
  const right = splitDebVersion(b);
  if (left.epoch !== right.epoch) return left.epoch - right.epoch;
  return dpkgPartCompare(left.upstream, right.upstream) || dpkgPartCompare(left.revision, right.revision);
}

const isAlnum = (c: string): boolean => isDigit(c) || isAlpha(c);

/** One segment from `start`: all digits or all letters. */
function rpmSegment(text: string, start: number, numeric: boolean): string {
  let end = start;
  while (end < text.length && (numeric ? isDigit(text[end]) : isAlpha(text[end]))) end++;
  return text.slice(start, end);
}

/** The separators `~` and `^` where one or both strings have them: the result, or undefined to go on. */
function rpmSeparator(c1: string, c2: string): number | 'next' | undefined {
  // `~` sorts before everything, even the end.
  if (c1 === '~' || c2 === '~') {
    if (c1 !== '~') return 1;
    if (c2 !== '~') return -1;
    return 'next';
  }
  // `^` sorts after the end, before anything else.
  if (c1 === '^' || c2 === '^') {
    if (c1 === '') return -1;
    if (c2 === '') return 1;
    if (c1 !== '^') return 1;
    if (c2 !== '^') return -1;
    return 'next';
  }
  return undefined;
}

/** Two segments of the same kind: numbers by value (leading zeros ignored), letters by byte. */
function rpmSegmentCompare(one: string, two: string, numeric: boolean): number {
  if (numeric) {
    const a = one.replace(/^0+/, '');
    const b = two.replace(/^0+/, '');
    if (a.length !== b.length) return a.length > b.length ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return one < two ? -1 : one > two ? 1 : 0;
}

/** rpm's rpmvercmp over one version or release string. */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    const separator = rpmSeparator(a.charAt(i), b.charAt(j));
    if (separator === 'next') {
      i++;
      j++;
      continue;
    }
    if (separator !== undefined) return separator;
    if (i >= a.length || j >= b.length) break;
    const numeric = isDigit(a[i]);
    const one = rpmSegment(a, i, numeric);
    const two = rpmSegment(b, j, numeric);
    // A numeric segment is newer than an alphabetic one.
    if (two === '') return numeric ? 1 : -1;
    const difference = rpmSegmentCompare(one, two, numeric);
    if (difference !== 0) return difference;
    i += one.length;
    j += two.length;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

/** [epoch:]version[-release] as the manifest writes an rpm package's version. */
function splitRpmVersion(version: string): { epoch: number; version: string; release?: string } {
  const match = /^(?:(\d+):)?(.*)$/.exec(version.trim()) as RegExpExecArray;
  const rest = match[2];
  const hyphen = rest.lastIndexOf('-');
  const epoch = match[1] === undefined ? 0 : Number(match[1]);
  return hyphen >= 0
    ? { epoch, version: rest.slice(0, hyphen), release: rest.slice(hyphen + 1) }
    : { epoch, version: rest };
}

/** Compare two rpm EVRs (`[E:]V-R`; a missing epoch is 0) as rpm orders packages. */
export function compareRpmVersions(a: string, b: string): number {
  const left = splitRpmVersion(a);
  const right = splitRpmVersion(b);
  if (left.epoch !== right.epoch) return left.epoch < right.epoch ? -1 : 1;
  const byVersion = rpmvercmp(left.version, right.version);
  if (byVersion !== 0) return byVersion;
  // As rpm.vercmp (rpm 4.18) does: a missing release compares as an empty one.
  return rpmvercmp(left.release ?? '', right.release ?? '');
}
