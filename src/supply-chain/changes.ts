import { formatBytes } from '../common/units.js';
import type { InstalledPackage, Inventory } from '../guest/inventory.js';
import { packageProblem, type PackageFormat } from '../guest/package-names.js';
import { printableLine } from '../common/printable-text.js';
import { compareDebVersions, compareRpmVersions } from './version-compare.js';

/** What the comparison needs of an earlier build's `<stem>.manifest.json`. */
export interface PreviousManifest {
  /** Where it came from, as shown (a path, or a URL with any password replaced). */
  source: string;
  image: string;
  date: string;
  packageManager: string;
  packages: Array<Pick<InstalledPackage, 'name' | 'version' | 'architecture'>>;
  /** Bytes of the image file, when the manifest records it (manifests of this project do). */
  imageSize?: number;
  /** The build's inputs and their SHA-256, when the manifest records them (undefined: an older manifest). */
  inputs?: Array<{ role: string; name: string; sha256: string }>;
}

/** A package in both builds with another version. */
export interface VersionChange {
  name: string;
  architecture: string;
  from: string;
  to: string;
}

export interface Changes {
  previous: { source: string; image: string; date: string; packageCount: number; imageSize?: number };
  current: { image: string; packageCount: number; imageSize: number };
  added: InstalledPackage[];
  removed: PreviousManifest['packages'];
  upgraded: VersionChange[];
  downgraded: VersionChange[];
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Why no package manager's rules take this package (the manifest's own
 * manager's, or either when it names none), or undefined.
 */
function manifestPackageProblem(
  packageManager: unknown,
  entry: Pick<InstalledPackage, 'name' | 'version' | 'architecture'>,
): string | undefined {
  const formats: PackageFormat[] =
    packageManager === 'dpkg' || packageManager === 'rpm' ? [packageManager] : ['dpkg', 'rpm'];
  const problems = formats.map((format) => packageProblem(format, entry));
  return problems.every((problem) => problem !== undefined) ? problems[0] : undefined;
}

/**
 * An earlier build's manifest, checked for what the comparison reads: a
 * JSON object with a `packages` list of objects with string `name`,
 * `version` and `architecture`, each as its package manager (dpkg, rpm)
 * accepts it — a name with a blank or a line break would write lines of its
 * own into `.changes`. Throws an Error that says what is wrong and where (the
 * message follows "the previous manifest <source> ").
 */
export function parseManifest(text: string, source: string): PreviousManifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `is not JSON (${(error as Error).message}); give a <image>-<date>.manifest.json of an earlier build`,
    );
  }
  if (!isObject(data) || !Array.isArray(data.packages)) {
    throw new Error('has no "packages" list; give a <image>-<date>.manifest.json of an earlier build');
  }
  const packages = data.packages.map((entry: unknown, index: number) => {
    if (!isObject(entry) || typeof entry.name !== 'string' || typeof entry.version !== 'string') {
      throw new Error(`has a package without a string "name" and "version" at packages[${index}]`);
    }
    const architecture = typeof entry.architecture === 'string' ? entry.architecture : '';
    const found = { name: entry.name, version: entry.version, architecture };
    const problem = manifestPackageProblem(data.packageManager, found);
    if (problem !== undefined) {
      const cut = (value: string): string => printableLine(value.length > 80 ? `${value.slice(0, 80)}…` : value);
      throw new Error(
        `has a package at packages[${index}] ('${cut(found.name)}' '${cut(found.version)}') whose ${problem.replace(/^its /, '')}; ` +
          'give a <image>-<date>.manifest.json of an earlier build',
      );
    }
    return found;
  });
  const text_ = (value: unknown): string => (typeof value === 'string' ? value : '');
  const size = data.imageSize;
  return {
    source,
    image: text_(data.image),
    date: text_(data.date),
    packageManager: text_(data.packageManager),
    packages,
    imageSize: typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 ? size : undefined,
    inputs: manifestInputs(data.inputs),
  };
}

/** The manifest's `inputs`, when it is a list of {role, name, sha256} strings; undefined otherwise. */
function manifestInputs(value: unknown): PreviousManifest['inputs'] {
  if (!Array.isArray(value)) return undefined;
  const inputs = value.filter(
    (entry): entry is { role: string; name: string; sha256: string } =>
      isObject(entry) &&
      typeof entry.role === 'string' &&
      typeof entry.name === 'string' &&
      typeof entry.sha256 === 'string',
  );
  return inputs.length === value.length ? inputs.map(({ role, name, sha256 }) => ({ role, name, sha256 })) : undefined;
}

const keyOf = (entry: { name: string; architecture: string }): string => `${entry.name}\u0000${entry.architecture}`;
const byName = (a: { name: string; architecture: string }, b: { name: string; architecture: string }): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : a.architecture < b.architecture ? -1 : 1;

/**
 * The packages added, removed, upgraded and downgraded since the previous
 * manifest, a package being its name and architecture, versions ordered by
 * the new system's package manager (dpkg's or rpm's rules).
 */
export function compareManifests(
  previous: PreviousManifest,
  current: { image: string; imageSize: number; inventory: Inventory },
): Changes {
  const compare = current.inventory.packageManager === 'rpm' ? compareRpmVersions : compareDebVersions;
  const before = new Map(previous.packages.map((entry) => [keyOf(entry), entry]));
  const now = new Map(current.inventory.packages.map((entry) => [keyOf(entry), entry]));
  const changes: Changes = {
    previous: {
      source: previous.source,
      image: previous.image,
      date: previous.date,
      packageCount: previous.packages.length,
      imageSize: previous.imageSize,
    },
    current: { image: current.image, packageCount: now.size, imageSize: current.imageSize },
    added: [],
    removed: [],
    upgraded: [],
    downgraded: [],
  };
  for (const [key, entry] of now) {
    const old = before.get(key);
    if (!old) {
      changes.added.push(entry);
      continue;
    }
    const order = compare(entry.version, old.version);
    const change = { name: entry.name, architecture: entry.architecture, from: old.version, to: entry.version };
    if (order > 0) changes.upgraded.push(change);
    else if (order < 0) changes.downgraded.push(change);
  }
  for (const [key, entry] of before) if (!now.has(key)) changes.removed.push(entry);
  for (const list of [changes.added, changes.removed, changes.upgraded, changes.downgraded]) list.sort(byName);
  return changes;
}

/** `+16.0 MiB (+1.0 %)`, `-2.0 KiB`, `unchanged`. */
function sizeDelta(before: number, after: number): string {
  const delta = after - before;
  if (delta === 0) return 'unchanged';
  const percent = before > 0 ? ` (${delta > 0 ? '+' : ''}${((100 * delta) / before).toFixed(1)} %)` : '';
  return `${delta > 0 ? '+' : '-'}${formatBytes(Math.abs(delta))}${percent}`;
}

/** The image size line: before and after, the difference, and the exact byte counts. */
export function sizeChange(changes: Changes): string {
  const before = changes.previous.imageSize;
  const after = changes.current.imageSize;
  if (before === undefined) return `${formatBytes(after)} (the previous manifest does not record its image's size)`;
  return `${formatBytes(before)} -> ${formatBytes(after)}: ${sizeDelta(before, after)} (${before} -> ${after} bytes)`;
}

/** `1 added, 0 removed, 2 upgraded, 0 downgraded`. */
export function changeCounts(changes: Changes): string {
  return (
    `${changes.added.length} added, ${changes.removed.length} removed, ` +
    `${changes.upgraded.length} upgraded, ${changes.downgraded.length} downgraded`
  );
}

/**
 * `<stem>.changes`: a header, then one section a kind of change, one package
 * a line, indented: `name architecture version` for added and removed,
 * `name architecture old -> new` for upgraded and downgraded.
 */
export function changesText(changes: Changes): string {
  const { previous, current } = changes;
  // The package lines hold only what dpkg's or rpm's rules allow; these come from the manifest as they are.
  const since = printableLine(previous.image) || 'the previous build';
  const lines = [
    `Changes of ${current.image} since ${since}${previous.date ? ` (${printableLine(previous.date)})` : ''}`,
    `Previous manifest: ${printableLine(previous.source)}`,
    `Image size: ${sizeChange(changes)}`,
    `Packages: ${previous.packageCount} -> ${current.packageCount} (${changeCounts(changes)})`,
  ];
  const section = (title: string, rows: string[]): void => {
    if (rows.length) lines.push('', `${title}:`, ...rows.map((row) => `  ${row}`));
  };
  section(
    'Added',
    changes.added.map((entry) => `${entry.name} ${entry.architecture} ${entry.version}`),
  );
  section(
    'Removed',
    changes.removed.map((entry) => `${entry.name} ${entry.architecture} ${entry.version}`),
  );
  const moved = (change: VersionChange): string =>
    `${change.name} ${change.architecture} ${change.from} -> ${change.to}`;
  section('Upgraded', changes.upgraded.map(moved));
  section('Downgraded', changes.downgraded.map(moved));
  return `${lines.join('\n')}\n`;
}

/** The `.changes` file when no comparison could be made (a previous manifest URL that could not be fetched). */
export function noChangesText(image: string, source: string, reason: string): string {
  // The reason may quote what a server said.
  return `Changes of ${image}: not compared\nPrevious manifest: ${printableLine(source)}\nReason: ${printableLine(reason)}\n`;
}
