/**
 * Package names, versions and architectures as dpkg and rpm accept them.
 * What the guest's package database or a previous manifest says is written
 * one package a line into `.packages` and `.changes`: a name or version with
 * a blank or a line break in it would write lines of its own. Anything the
 * package manager's own rules refuse is not a package of that system.
 */

import type { InstalledPackage } from './inventory.js';

export type PackageFormat = 'dpkg' | 'rpm';

type Entry = Pick<InstalledPackage, 'name' | 'version' | 'architecture'>;

const ALNUM = /[A-Za-z0-9]/;

/** The first character of `text` outside `allowed` (a pattern of one character), or undefined. */
function firstOutside(text: string, allowed: RegExp): string | undefined {
  for (const char of text) if (!allowed.test(char)) return char;
  return undefined;
}

/** A character as a message shows it: itself when printable, its code point otherwise. */
function shown(char: string): string {
  return /^[\x21-\x7e]$/.test(char) ? `'${char}'` : `U+${char.codePointAt(0)?.toString(16).padStart(4, '0')}`;
}

/** dpkg's pkg_name_is_illegal: a letter or digit, then letters, digits and `-+._`. */
function dpkgNameProblem(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (!ALNUM.test(name[0])) return 'it does not start with a letter or digit';
  const bad = firstOutside(name, /[A-Za-z0-9+._-]/);
  return bad === undefined ? undefined : `${shown(bad)} is not a letter, digit or one of -+._`;
}

/**
 * dpkg's parseversion: `[epoch:]upstream[-revision]`, no blanks, a numeric
 * epoch, upstream of letters, digits and `.+~-:`, revision of letters, digits
 * and `.+~`. (A version that does not start with a digit dpkg only warns of,
 * and keeps in its database; so is it here.)
 */
function dpkgVersionProblem(version: string): string | undefined {
  if (version === '') return 'it is empty';
  let rest = version;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    if (!/^\d+$/.test(rest.slice(0, colon))) return 'its epoch is not a number';
    if (Number(rest.slice(0, colon)) > 2 ** 31 - 1) return 'its epoch is too big';
    rest = rest.slice(colon + 1);
    if (rest === '') return 'nothing follows the epoch';
  }
  const hyphen = rest.lastIndexOf('-');
  const upstream = hyphen >= 0 ? rest.slice(0, hyphen) : rest;
  const revision = hyphen >= 0 ? rest.slice(hyphen + 1) : '';
  if (hyphen >= 0 && revision === '') return 'its revision is empty';
  if (upstream === '') return 'its upstream version is empty';
  const badUpstream = firstOutside(upstream, /[A-Za-z0-9.+~:-]/);
  if (badUpstream !== undefined) return `${shown(badUpstream)} is not a letter, digit or one of .+~-:`;
  const badRevision = firstOutside(revision, /[A-Za-z0-9.+~]/);
  if (badRevision !== undefined) return `${shown(badRevision)} in its revision is not a letter, digit or one of .+~`;
  return undefined;
}

/** dpkg_arch_name_is_illegal: a letter or digit, then letters, digits and `-`; empty when the record has none. */
function dpkgArchitectureProblem(architecture: string): string | undefined {
  if (architecture === '') return undefined;
  if (!ALNUM.test(architecture[0])) return 'it does not start with a letter or digit';
  const bad = firstOutside(architecture, /[A-Za-z0-9-]/);
  return bad === undefined ? undefined : `${shown(bad)} is not a letter, digit or -`;
}

/** rpmbuild's rpmCharCheck: the characters `allowed` besides letters and digits, and no `..`. */
function rpmCharProblem(text: string, allowed: RegExp, list: string): string | undefined {
  if (text === '') return 'it is empty';
  const bad = firstOutside(text, allowed);
  if (bad !== undefined) return `${shown(bad)} is not a letter, digit or one of ${list}`;
  return text.includes('..') ? "it holds '..'" : undefined;
}

/** rpm's name: a letter, digit, `_` or `%` first, then letters, digits and `.-_+%{}`. */
function rpmNameProblem(name: string): string | undefined {
  if (name !== '' && !/[A-Za-z0-9_%]/.test(name[0])) return 'it does not start with a letter, digit, _ or %';
  return rpmCharProblem(name, /[A-Za-z0-9.\-_+%{}]/, '.-_+%{}');
}

/** `[epoch:]version-release` as the inventory's query prints it: each part letters, digits and `._+%{}~^`. */
function rpmVersionProblem(evr: string): string | undefined {
  const epoch = /^(\d+):/.exec(evr);
  const rest = epoch ? evr.slice(epoch[0].length) : evr;
  const hyphen = rest.indexOf('-');
  if (hyphen < 0) return 'it is not version-release';
  for (const [part, text] of [
    ['version', rest.slice(0, hyphen)],
    ['release', rest.slice(hyphen + 1)],
  ]) {
    const problem = rpmCharProblem(text, /[A-Za-z0-9._+%{}~^]/, '._+%{}~^');
    if (problem !== undefined) return `its ${part}: ${problem}`;
  }
  return undefined;
}

/** rpm's architecture: letters, digits and `_` (x86_64, noarch, aarch64); `(none)` (rpm's word) or empty when unset. */
function rpmArchitectureProblem(architecture: string): string | undefined {
  if (architecture === '(none)') return undefined;
  const bad = firstOutside(architecture, /[A-Za-z0-9_]/);
  return bad === undefined ? undefined : `${shown(bad)} is not a letter, digit or _`;
}

const RULES: Record<PackageFormat, Record<keyof Entry, (text: string) => string | undefined>> = {
  dpkg: { name: dpkgNameProblem, version: dpkgVersionProblem, architecture: dpkgArchitectureProblem },
  rpm: { name: rpmNameProblem, version: rpmVersionProblem, architecture: rpmArchitectureProblem },
};

/**
 * Why `format` (dpkg's or rpm's rules) would not take this package's name,
 * version or architecture, or undefined when it would. The message names the
 * field and the rule, not the value (the caller shows that, made printable).
 */
export function packageProblem(format: PackageFormat, entry: Entry): string | undefined {
  for (const field of ['name', 'version', 'architecture'] as const) {
    const problem = RULES[format][field](entry[field]);
    if (problem !== undefined) return `its ${field} is not one ${format} accepts: ${problem}`;
  }
  return undefined;
}
