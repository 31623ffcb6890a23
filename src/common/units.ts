const BINARY: Record<string, number> = { KiB: 1, MiB: 2, GiB: 3, TiB: 4, PiB: 5, EiB: 6 };
const SI: Record<string, number> = { B: 0, kB: 1, MB: 2, GB: 3, TB: 4, PB: 5, EB: 6 };
const LEGACY: Record<string, number> = { K: 1, M: 2, G: 3, T: 4, P: 5, E: 6 };

const SIZE_PATTERN = /^([0-9]+)\s*([kMGTPE]?B|[KMGTPE]iB|[KMGTPE])$/;

/** The largest size: what a number holds exactly (2^53-1 bytes, 8 PiB). */
export const MAX_BYTES = Number.MAX_SAFE_INTEGER;

/** What is wrong with a size, worded after the value ('…' is not a size …), or undefined when it is one. */
export function sizeProblem(text: string): string | undefined {
  const bytes = parseBytes(text);
  if (bytes !== undefined && bytes > 0) return undefined;
  if (bytes === 0) return 'is zero; a size is at least 1 byte.';
  if (SIZE_PATTERN.test(text.trim())) return 'is too large; sizes go up to 8 PiB (2^53-1 bytes).';
  return `is not a size; use ${SIZE_FORMS}.`;
}

export const SIZE_FORMS = "a whole number with a unit: binary '512 MiB', '4 GiB', SI '2 GB', or legacy '2G' (= 2 GiB)";

/**
 * Parse a size the way image-factory does: SI prefixes (kB, MB, GB…), binary
 * prefixes (KiB, MiB, GiB…) and, for backward compatibility, K/M/G meaning
 * KiB/MiB/GiB. Returns undefined for anything else.
 */
export function parseBytes(text: string): number | undefined {
  const match = SIZE_PATTERN.exec(text.trim());
  if (!match) return undefined;
  const value = BigInt(match[1]);
  const unit = match[2];
  let bytes: bigint;
  if (unit in BINARY) bytes = value << BigInt(10 * BINARY[unit]);
  else if (unit in SI) bytes = value * 10n ** BigInt(3 * SI[unit]);
  else bytes = value << BigInt(10 * LEGACY[unit]);
  return bytes > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(bytes);
}

export const DURATION_FORMS = "seconds ('900'), or a number with s, m or h ('90m', '3h', '1h30m')";

/** The longest duration: what Node's timers hold (2^31-1 ms); a longer one fires at once. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** What is wrong with a duration, worded after the value, or undefined when it is one. */
export function durationProblem(text: string): string | undefined {
  const ms = parseDuration(text);
  if (!ms) return `is not a duration; use ${DURATION_FORMS}.`;
  if (ms > MAX_DURATION_MS) return `is longer than a timer can hold; use at most 596h31m23s (2^31-1 ms).`;
  return undefined;
}

/** Parse '3h', '90m', '45s', '1h30m' or plain seconds into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^[0-9]+$/.test(trimmed)) return Number(trimmed) * 1000;
  const match = /^(?:([0-9]+)\s*h)?\s*(?:([0-9]+)\s*m)?\s*(?:([0-9]+)\s*s)?$/.exec(trimmed);
  if (!match || trimmed === '' || !(match[1] || match[2] || match[3])) return undefined;
  const [h, m, s] = [match[1], match[2], match[3]].map((part) => Number(part ?? 0));
  return ((h * 60 + m) * 60 + s) * 1000;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  if (m < 60) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
