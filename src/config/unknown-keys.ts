/**
 * Keys that nothing reads: a misspelt `preseeed` is otherwise ignored without
 * a word, and the installer then waits for a human until the timeout. A key
 * is known when the option table has it, when it is one of an upload
 * destination's keys, or when some value references it (users keep their
 * own keys in [DEFAULT] for interpolation: `debian_mirror`, `dist`).
 */
import { DEFAULT_SECTION, type ConfigParser } from './configparser.js';
import { OPTIONS, valueProblem, optionByKey, type OptionSpec } from './options.js';
import { UsageError } from './usage-error.js';
import { ARCH_KEYS } from '../common/arch.js';
import { OCI_KEYS } from './oci-destination.js';
import { GLANCE_KEYS } from './glance-destination.js';

/** The keys of an upload destination's section (post-upload-command may be numbered: post-upload-command1, …). */
export const UPLOAD_KEYS = [
  'upload_type',
  'upload_target',
  'upload_args',
  'post-upload-command',
  ...OCI_KEYS,
  ...GLANCE_KEYS,
] as const;

/** Keys the program itself sets: the shipped data folder, and the uploaded file for post-upload commands. */
const PROGRAM_KEYS = ['data_dir', 'image', 'reference', ...ARCH_KEYS];

const KNOWN_KEYS: readonly string[] = [
  ...(OPTIONS as readonly OptionSpec[]).flatMap((entry) => (entry.key === undefined ? [] : [entry.key])),
  ...UPLOAD_KEYS,
  ...PROGRAM_KEYS,
];

function isKnown(key: string): boolean {
  return KNOWN_KEYS.includes(key) || /^post-upload-command[0-9]+$/.test(key);
}

/**
 * The distance between two words counting a swap of neighbours as one edit
 * (optimal string alignment): `instal-timeout` is one from `install-timeout`,
 * `imagesize` one from `image-size`.
 */
export function editDistance(a: string, b: string): number {
  // Three rows of the table (a swap looks two rows back), not the whole table: this runs for every unknown key.
  let twoBack = new Uint32Array(b.length + 1);
  let previous = Uint32Array.from({ length: b.length + 1 }, (_, j) => j);
  let row = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i += 1) {
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j], twoBack[j - 2] + 1);
    }
    [twoBack, previous, row] = [previous, row, twoBack];
  }
  return previous[b.length];
}

/** `candidates` ordered by closeness to `word` (case-insensitive), the closest first; ties keep their order. */
export function closestFirst(word: string, candidates: readonly string[]): string[] {
  const target = word.toLowerCase();
  return candidates
    .map((candidate, index) => ({ candidate, index, distance: editDistance(target, candidate.toLowerCase()) }))
    .sort((x, y) => x.distance - y.distance || x.index - y.index)
    .map(({ candidate }) => candidate);
}

/** The known key that `key` was probably meant to be, when one is close enough. */
export function suggestKey(key: string): string | undefined {
  const limit = Math.max(2, Math.floor(key.length / 4));
  // Two words are at least as far apart as their lengths differ: only the keys that can be close enough are measured.
  const near = KNOWN_KEYS.filter((known) => Math.abs(known.length - key.length) <= limit);
  const [best] = closestFirst(key, near);
  return best !== undefined && editDistance(key, best) <= limit ? best : undefined;
}

/** Every key that some value of the configuration references, as `${key}` or `${section:key}`. */
function referencedKeys(config: ConfigParser): Set<string> {
  const referenced = new Set<string>();
  const values = [
    ...Object.values(config.defaults()),
    ...config.sections().flatMap((section) => config.ownKeys(section).map((key) => config.getRaw(section, key) ?? '')),
  ];
  for (const value of values) {
    for (const match of value.matchAll(/\$\{([^}]+)\}/g)) {
      const parts = match[1].split(':');
      referenced.add(parts[parts.length - 1].toLowerCase());
    }
  }
  return referenced;
}

/** One unknown key: where it is, and what it may have meant. */
export interface UnknownKey {
  section: string;
  key: string;
  message: string;
}

/** The keys of the image's section and of [DEFAULT] that no option and no reference uses. */
export function unknownKeys(config: ConfigParser, image: string): UnknownKey[] {
  const referenced = referencedKeys(config);
  const found: UnknownKey[] = [];
  const sections: Array<[string, string[]]> = [
    [DEFAULT_SECTION, Object.keys(config.defaults())],
    [image, config.ownKeys(image)],
  ];
  for (const [section, keys] of sections) {
    for (const key of keys) {
      if (isKnown(key) || referenced.has(key)) continue;
      const origin = config.origin(section, key);
      // A key that only the program set (not read from a file) is not the user's typo.
      if (origin === undefined) continue;
      const suggestion = suggestKey(key);
      found.push({
        section,
        key,
        message:
          `${origin.file}:${origin.line}: [${section}] unknown key '${key}': no option and no reference uses it` +
          (suggestion ? `; did you mean '${suggestion}'?` : '.'),
      });
    }
  }
  return found;
}

/**
 * Report the unknown keys of an image: each as a warning, or all in one
 * UsageError when `strict` is on (the key, or --strict).
 */
export function checkKeys(config: ConfigParser, image: string, warn: (message: string) => void): void {
  const unknown = unknownKeys(config, image);
  if (unknown.length === 0) return;
  const strictText = config.hasOption(image, 'strict') ? config.get(image, 'strict') : 'no';
  const strictProblem = valueProblem(optionByKey('strict'), strictText);
  if (strictProblem !== undefined) throw new UsageError(`[${image}] strict: ${strictProblem}`);
  if (/^(1|yes|true|on)$/i.test(strictText.trim())) {
    throw new UsageError(
      `${unknown.map((entry) => entry.message).join('\n')}\n(strict is on: unknown keys are errors; remove or correct them)`,
    );
  }
  for (const entry of unknown) warn(entry.message);
}
