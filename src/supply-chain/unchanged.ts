import type { InstalledPackage } from '../guest/inventory.js';
import type { PreviousManifest } from './changes.js';
import type { BuildInput } from './manifest.js';

/** skip-unchanged's decision: whether this build equals the previous one, and why (in words) it does or not. */
export interface UnchangedDecision {
  unchanged: boolean;
  reason: string;
}

type Package = Pick<InstalledPackage, 'name' | 'version' | 'architecture'>;

/** The keys whose values differ between two lists of key and value (one missing from either list counts). */
function differingKeys(a: ReadonlyArray<[string, string]>, b: ReadonlyArray<[string, string]>): string[] {
  const values = (list: ReadonlyArray<[string, string]>): Map<string, string> => {
    const map = new Map<string, string[]>();
    for (const [key, value] of list) map.set(key, [...(map.get(key) ?? []), value]);
    return new Map([...map].map(([key, all]) => [key, all.sort().join('\u0000')]));
  };
  const left = values(a);
  const right = values(b);
  return [...new Set([...left.keys(), ...right.keys()])].filter((key) => left.get(key) !== right.get(key));
}

const packageEntry = (entry: Package): [string, string] => [`${entry.name}:${entry.architecture}`, entry.version];
const inputEntry = (entry: { role: string; sha256: string }): [string, string] => [entry.role, entry.sha256];

/**
 * The image is unchanged when its package list (name, version, architecture)
 * and its inputs (each role's SHA-256: answer file, installer files,
 * provisioning) equal the previous manifest's. A manifest that records no
 * inputs (an older build's) cannot show that they are the same: changed.
 */
export function decideUnchanged(
  previous: PreviousManifest | undefined,
  current: { packages: readonly Package[]; inputs: readonly BuildInput[] },
): UnchangedDecision {
  if (!previous) return { unchanged: false, reason: 'there is no previous manifest to compare with' };
  if (!previous.inputs) return { unchanged: false, reason: `${previous.source} records no inputs' digests` };
  const packages = differingKeys(previous.packages.map(packageEntry), current.packages.map(packageEntry)).length;
  const inputs = differingKeys(previous.inputs.map(inputEntry), current.inputs.map(inputEntry));
  if (packages === 0 && inputs.length === 0) {
    const what = `${current.packages.length} packages and ${current.inputs.length} inputs`;
    return { unchanged: true, reason: `the same ${what} as ${previous.image || previous.source}` };
  }
  const parts = [
    ...(packages ? [`${packages} packages differ`] : []),
    ...(inputs.length ? [`the inputs ${inputs.join(', ')} differ`] : []),
  ];
  return { unchanged: false, reason: `${parts.join(' and ')} since ${previous.image || previous.source}` };
}
