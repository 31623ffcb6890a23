import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProgram } from '../host/programs.js';
import type { BuildContext } from '../context/build-context.js';
import { GuestFileTooLarge, type GuestTree } from './guest-tree.js';
import { packageProblem } from './package-names.js';

/** One installed package, as its package database lists it. */
export interface InstalledPackage {
  name: string;
  version: string;
  architecture: string;
  /** The source package it was built from (dpkg's Source:, rpm's SOURCERPM name), when it differs or is known. */
  source?: string;
  sourceVersion?: string;
}

/** What the installed system is: read from its own files while its file system is mounted. */
export interface Inventory {
  /** /etc/os-release's fields (ID, VERSION_ID, VERSION_CODENAME, PRETTY_NAME, ID_LIKE …). */
  osRelease: Record<string, string>;
  /** Kernel versions installed: /boot/vmlinuz-* and /lib/modules/*. */
  kernels: string[];
  packageManager: 'dpkg' | 'rpm' | 'none';
  packages: InstalledPackage[];
}

/** os-release's KEY=VALUE lines, quotes and backslash escapes removed (os-release(5)). */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!match) continue;
    let value = match[2];
    const quoted = /^(["'])(.*)\1$/.exec(value);
    if (quoted) value = quoted[1] === '"' ? quoted[2].replace(/\\(["\\`$])/g, '$1') : quoted[2];
    fields[match[1]] = value;
  }
  return fields;
}

/** The fields of one deb-control(5) paragraph, names in lower case (continuation lines are not needed). */
function controlFields(paragraph: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of paragraph.split('\n')) {
    if (/^[ \t]/.test(line)) continue; // a continuation line (Description, Conffiles)
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return fields;
}

const paragraphs = (text: string): string[] => text.replace(/\r/g, '').split(/\n\s*\n/);

/** A package the inventory leaves out, and why: its name, version or architecture breaks its manager's rules. */
export interface SkippedPackage {
  name: string;
  version: string;
  problem: string;
}

/**
 * The installed packages of a dpkg status file (deb-control(5) paragraphs),
 * with the records of dpkg's journal (`/var/lib/dpkg/updates/NNNN`, in order)
 * over them, as dpkg-query reads them: a dpkg that was stopped before it
 * folded its journal into the status file has its last changes there. Those
 * whose Status is `… installed`, sorted by name and architecture; one whose
 * name, version or architecture dpkg would refuse is left out and passed to
 * `onSkipped` (it could write lines of its own into `.packages`).
 */
export function parseDpkgStatus(
  text: string,
  journal: string[] = [],
  onSkipped: (skipped: SkippedPackage) => void = () => undefined,
): InstalledPackage[] {
  const records = new Map<string, Record<string, string>>();
  for (const paragraph of [...paragraphs(text), ...journal.flatMap(paragraphs)]) {
    const fields = controlFields(paragraph);
    if (fields.package) records.set(`${fields.package}:${fields.architecture ?? ''}`, fields);
  }
  const packages: InstalledPackage[] = [];
  for (const fields of records.values()) {
    if (!/(^|\s)installed$/.test(fields.status ?? '')) continue;
    const entry: InstalledPackage = {
      name: fields.package,
      version: fields.version ?? '',
      architecture: fields.architecture ?? '',
    };
    const problem = packageProblem('dpkg', entry);
    if (problem !== undefined) {
      onSkipped({ name: entry.name, version: entry.version, problem });
      continue;
    }
    // Source: NAME or NAME (VERSION); without it, the source package is the binary's own.
    const source = /^(\S+)(?:\s+\((\S+)\))?$/.exec(fields.source ?? '');
    entry.source = source ? source[1] : entry.name;
    entry.sourceVersion = source?.[2] ?? entry.version;
    packages.push(entry);
  }
  return packages.sort((a, b) => compare(a.name, b.name) || compare(a.architecture, b.architecture));
}

/** The records of dpkg's journal, oldest first (its files are numbered; any other name is dpkg's scratch). */
async function dpkgJournal(ctx: BuildContext, tree: GuestTree, budget: Budget): Promise<string[]> {
  const folder = await tree.resolveFolder('var/lib/dpkg/updates');
  if ('missing' in folder) return [];
  const names = (await tree.list(folder.path))
    .filter((entry) => entry.kind === 'file' && /^\d+$/.test(entry.name))
    .map((entry) => entry.name)
    .sort((a, b) => Number(a) - Number(b));
  const records: string[] = [];
  for (const name of names) records.push((await readGuestFile(ctx, tree, `${folder.path}/${name}`, budget)) ?? '');
  if (records.length) ctx.reporter.info(`dpkg's journal holds ${records.length} record(s) not yet in its status file`);
  return records;
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** rpm's query format: one tab-separated line a package, `(none)` where a tag is unset. */
export const RPM_QUERY_FORMAT = '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n';

/**
 * The lines `rpm -qa --queryformat RPM_QUERY_FORMAT` printed; a package whose
 * name, version or architecture rpm's rules refuse, or a line that is not the
 * four fields of one (a name with a line break in it), is left out and passed
 * to `onSkipped`.
 */
export function parseRpmQuery(
  text: string,
  onSkipped: (skipped: SkippedPackage) => void = () => undefined,
): InstalledPackage[] {
  const packages: InstalledPackage[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [name, version, architecture, sourceRpm] = line.split('\t');
    if (name.startsWith('gpg-pubkey')) continue;
    if (version === undefined || sourceRpm === undefined) {
      onSkipped({ name, version: version ?? '', problem: 'rpm printed it as part of a line, not as a package' });
      continue;
    }
    const entry: InstalledPackage = { name, version, architecture };
    const problem = packageProblem('rpm', entry);
    if (problem !== undefined) {
      onSkipped({ name, version, problem });
      continue;
    }
    // NAME-VERSION-RELEASE.src.rpm
    const source = /^(.+)-([^-]+-[^-]+)\.(?:no)?src\.rpm$/.exec(sourceRpm ?? '');
    if (source) {
      entry.source = source[1];
      entry.sourceVersion = source[2];
    }
    packages.push(entry);
  }
  return packages.sort((a, b) => compare(a.name, b.name) || compare(a.architecture, b.architecture));
}

/** Read the installed system: os-release, kernels, and its packages from dpkg's status or rpm's database. */
export async function inspectSystem(ctx: BuildContext, tree: GuestTree): Promise<Inventory> {
  const small = (): Budget => ({ left: READ_LIMITS.osRelease });
  const osRelease = parseOsRelease(
    (await readGuestFile(ctx, tree, 'etc/os-release', small())) ??
      (await readGuestFile(ctx, tree, 'usr/lib/os-release', small())) ??
      '',
  );
  const kernels = await installedKernels(tree);
  const database: Budget = { left: READ_LIMITS.packageDatabase };
  const status = await readGuestFile(ctx, tree, 'var/lib/dpkg/status', database);
  let inventory: Inventory = { osRelease, kernels, packageManager: 'none', packages: [] };
  const skipped: SkippedPackage[] = [];
  if (status !== undefined) {
    const packages = parseDpkgStatus(status, await dpkgJournal(ctx, tree, database), (entry) => skipped.push(entry));
    inventory = { ...inventory, packageManager: 'dpkg', packages };
  } else {
    const packages = await rpmPackages(ctx, tree, (entry) => skipped.push(entry));
    if (packages) inventory = { ...inventory, packageManager: 'rpm', packages };
  }
  if (skipped.length) ctx.reporter.warning(describeSkipped(inventory.packageManager, skipped));
  const name = osRelease.PRETTY_NAME ?? osRelease.ID ?? 'an unknown distribution (no /etc/os-release)';
  const kernel = kernels.length ? `kernel ${kernels.join(', ')}` : 'no kernel found in /boot or /lib/modules';
  const what = inventory.packageManager === 'none' ? 'no package database' : `${inventory.packageManager}`;
  ctx.reporter.info(`Installed system: ${name}, ${kernel}, ${inventory.packages.length} packages (${what})`);
  return inventory;
}

/** How many packages were left out and why, the first few named (each cut short: a name may be any length). */
function describeSkipped(manager: string, skipped: SkippedPackage[]): string {
  const cut = (text: string): string => (text.length > 80 ? `${text.slice(0, 80)}…` : text);
  const named = skipped.slice(0, 5).map((entry) => `'${cut(entry.name)}' '${cut(entry.version)}': ${entry.problem}`);
  const more = skipped.length > named.length ? `; and ${skipped.length - named.length} more` : '';
  return (
    `left ${skipped.length} package(s) of the ${manager} database out of the manifest, .packages and SBOM, ` +
    `as ${manager} itself would not take them: ${named.join('; ')}${more}`
  );
}

/**
 * What the build reads of the guest's files, at most: os-release is a few
 * hundred bytes; dpkg's status and journal, or rpm's database, are tens of
 * MiB on a large system. A file (or a database) larger than that is skipped
 * with a warning, asked before a byte is copied: the guest's sizes are its own
 * (a sparse file of terabytes on a small disk).
 */
export const READ_LIMITS = { osRelease: 64 * 1024, packageDatabase: 512 * 1024 * 1024 };

/** What is left of a budget shared by several files (a package database's). */
interface Budget {
  left: number;
}

/**
 * A guest file's text, every symlink resolved inside the guest; undefined
 * (and why, when odd) otherwise. A file larger than `limit` (or than what
 * is left of `budget`) is not read: a warning says so.
 */
async function readGuestFile(
  ctx: BuildContext,
  tree: GuestTree,
  path: string,
  budget: Budget,
): Promise<string | undefined> {
  const resolved = await tree.resolveFile(path);
  if ('missing' in resolved) {
    if (resolved.why) ctx.reporter.warning(`not reading /${path}: ${resolved.why}`);
    return undefined;
  }
  try {
    const text = await tree.read(resolved.path, budget.left);
    if (text !== undefined) budget.left -= Buffer.byteLength(text);
    return text;
  } catch (error) {
    if (!(error instanceof GuestFileTooLarge)) throw error;
    ctx.reporter.warning(`not reading ${error.message}: the manifest is made without it`);
    return undefined;
  }
}

async function installedKernels(tree: GuestTree): Promise<string[]> {
  const versions = new Set<string>();
  const boot = await tree.resolveFolder('boot');
  if (!('missing' in boot)) {
    for (const entry of await tree.list(boot.path)) {
      const match = /^vmlinu[xz]-(.+)$/.exec(entry.name);
      if (match && (entry.kind === 'file' || entry.kind === 'link')) versions.add(match[1]);
    }
  }
  const modules = await tree.resolveFolder('lib/modules');
  if (!('missing' in modules)) {
    for (const entry of await tree.list(modules.path)) if (entry.kind === 'dir') versions.add(entry.name);
  }
  return [...versions].sort();
}

/** Where rpm keeps its database: /var/lib/rpm, or /usr/lib/sysimage/rpm (rpm ≥ 4.16, Fedora 36+, openSUSE). */
const RPM_DB_FOLDERS = ['usr/lib/sysimage/rpm', 'var/lib/rpm'];

/** The folders the inventory reads (lib/modules is usr/lib/modules on a merged /usr), for GuestTree.survey. */
export const INVENTORY_FOLDERS = [
  'etc',
  'usr/lib',
  'var/lib/dpkg/updates',
  'boot',
  'lib/modules',
  'usr/lib/modules',
  ...RPM_DB_FOLDERS,
];

/**
 * The packages of the guest's rpm database, queried on a private copy of it:
 * the database's regular files (resolved in the guest's tree, symlinks
 * skipped) copied to a temporary folder, and `rpm --dbpath <copy>` run
 * there. rpm never opens a path inside the guest (`--root` would chroot into
 * it and follow the guest's symlinks, and opening its sqlite database writes
 * -shm/-wal files into the image); the copy goes when the query is done.
 */
async function rpmPackages(
  ctx: BuildContext,
  tree: GuestTree,
  onSkipped: (skipped: SkippedPackage) => void,
): Promise<InstalledPackage[] | undefined> {
  for (const folder of RPM_DB_FOLDERS) {
    const resolved = await tree.resolveFolder(folder);
    if ('missing' in resolved) continue;
    const files = (await tree.list(resolved.path)).filter((entry) => entry.kind === 'file');
    if (!files.some((entry) => /^(rpmdb\.sqlite|Packages|Packages\.db)$/.test(entry.name))) continue;
    if (ctx.host.live && !findProgram('rpm')) {
      ctx.reporter.warning(
        `the installed system keeps an rpm database in /${folder}, but rpm is not installed on this host: ` +
          'the manifest lists no packages (install rpm, or run with --install-dependencies)',
      );
      return [];
    }
    const total = files.reduce((sum, file) => sum + (file.size ?? 0), 0);
    if (total > READ_LIMITS.packageDatabase) {
      ctx.reporter.warning(
        `not copying the rpm database in /${folder}: its files are ${total} bytes, more than the ${READ_LIMITS.packageDatabase} bytes read of a package database; the manifest lists no packages`,
      );
      return [];
    }
    const { host, cleanup } = ctx;
    const copy = await host.makeTempDir(join(tmpdir(), 'image-factory-rpmdb.'));
    const entry = cleanup.register({ kind: 'path', path: copy });
    for (const file of files) {
      await tree.copyOut(
        resolved.path ? `${resolved.path}/${file.name}` : file.name,
        join(copy, file.name),
        READ_LIMITS.packageDatabase,
      );
    }
    const query = ['rpm', '--dbpath', copy, '--query', '--all', '--queryformat', RPM_QUERY_FORMAT];
    const result = await host.run(query, { captureStdout: true, quiet: true });
    await cleanup.release(entry);
    return parseRpmQuery(result.stdout, onSkipped);
  }
  return undefined;
}
