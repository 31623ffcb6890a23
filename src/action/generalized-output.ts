import type { GeneralizeRow } from '../guest/generalize.js';

/**
 * The `generalized` output holds at most this many rows, and this many bytes
 * of JSON: GitHub refuses an output over 1 MB, and 15,000 files in the guest's
 * /tmp made 1.17 MB. The job summary counts them all by operation.
 */
export const MAX_GENERALIZED_ROWS = 1000;
export const MAX_GENERALIZED_BYTES = 512 * 1024;

/** The `generalized` output: the first rows that fit (machine-id and host keys come first), and how many did not. */
export function generalizedOutput(rows: readonly GeneralizeRow[]): { json: string; leftOut: number } {
  const shown: string[] = [];
  let bytes = '[]'.length;
  for (const row of rows.slice(0, MAX_GENERALIZED_ROWS)) {
    const text = JSON.stringify(row);
    const size = Buffer.byteLength(text) + ','.length;
    if (bytes + size > MAX_GENERALIZED_BYTES) break;
    shown.push(text);
    bytes += size;
  }
  return { json: `[${shown.join(',')}]`, leftOut: rows.length - shown.length };
}
