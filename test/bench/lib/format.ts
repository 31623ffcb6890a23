export function min(values: readonly number[]): number {
  return values.length ? Math.min(...values) : NaN;
}

export function max(values: readonly number[]): number {
  return values.length ? Math.max(...values) : NaN;
}

export function median(values: readonly number[]): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function seconds(ms: number): string {
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : '–';
}

export function mib(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(1)} MiB` : '–';
}

export function kibAsMib(kib: number): string {
  return mib(kib * 1024);
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(3)}×` : '–';
}

export function percent(value: number): string {
  return Number.isFinite(value) ? `${(100 * value).toFixed(1)}%` : '–';
}

export function rate(bytes: number, ms: number): string {
  return `${(bytes / 1048576 / (ms / 1000)).toFixed(0)} MiB/s`;
}

/** A plain-text table: first row is the header; columns after the first are right-aligned. */
export function table(rows: readonly (readonly string[])[], title?: string): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const line = (row: readonly string[]): string =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const [head, ...body] = rows;
  return [...(title ? [title] : []), line(head), rule, ...body.map(line)].join('\n');
}
