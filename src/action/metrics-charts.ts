import { formatDuration } from '../common/units.js';
import { compareSteps, stepSeconds, totalSeconds, type BuildMetrics } from '../supply-chain/metrics.js';

/**
 * A label on the chart's x axis: the build's date, with a number where two
 * builds share one. The history comes from files and a cache that are not
 * trusted: only letters, digits and `.:_-` reach the chart's text.
 */
function axisLabels(builds: readonly BuildMetrics[]): string[] {
  const seen = new Map<string, number>();
  return builds.map((build) => {
    const date = build.date.replace(/[^A-Za-z0-9.:_-]/g, '').slice(0, 32) || 'unknown';
    const count = (seen.get(date) ?? 0) + 1;
    seen.set(date, count);
    return count === 1 ? date : `${date} #${count}`;
  });
}

/** A number for a chart's data: finite, with at most one decimal. */
const figure = (value: number): string => (Number.isFinite(value) ? String(Math.round(value * 10) / 10) : '0');

function chart(
  title: string,
  labels: string[],
  yAxis: string,
  series: Array<['bar' | 'line', number[]]>,
  fromZero = false,
): string {
  // From zero where parts are compared with the whole (the install's line against the build's bars).
  const top = Math.ceil(Math.max(1, ...series.flatMap(([, values]) => values).filter(Number.isFinite)));
  return [
    '```mermaid',
    'xychart-beta',
    `  title "${title}"`,
    `  x-axis [${labels.map((label) => `"${label}"`).join(', ')}]`,
    `  y-axis "${yAxis}"${fromZero ? ` 0 --> ${top}` : ''}`,
    ...series.map(([kind, values]) => `  ${kind} [${values.map(figure).join(', ')}]`),
    '```',
  ].join('\n');
}

/**
 * The last builds as Mermaid xychart-beta charts (GitHub renders them in a
 * job summary): the first image's size, the package count, and the build's
 * time, the whole of it as bars and the install as a line.
 */
export function historyCharts(builds: readonly BuildMetrics[]): string {
  const labels = axisLabels(builds);
  const mib = (build: BuildMetrics): number => (build.images[0]?.size ?? 0) / 2 ** 20;
  return [
    chart('Image size (MiB)', labels, 'MiB', [['bar', builds.map(mib)]]),
    chart('Packages', labels, 'packages', [['bar', builds.map((build) => build.packages)]]),
    chart(
      'Build time (s): bars the whole build, the line the install',
      labels,
      'seconds',
      [
        ['bar', builds.map(totalSeconds)],
        ['line', builds.map((build) => stepSeconds(build, 'install'))],
      ],
      true,
    ),
  ].join('\n\n');
}

const cell = (seconds: number | undefined): string => (seconds === undefined ? '-' : formatDuration(seconds * 1000));

/** This build's steps with the previous build's times beside: rows of step, this build, previous, difference. */
export function stepComparisonRows(current: BuildMetrics, previous: BuildMetrics): string[][] {
  return compareSteps(current, previous).map((row) => {
    const delta =
      row.seconds === undefined || row.previous === undefined
        ? '-'
        : `${row.seconds >= row.previous ? '+' : '-'}${formatDuration(Math.abs(row.seconds - row.previous) * 1000)}`;
    return [row.step, cell(row.seconds), cell(row.previous), delta];
  });
}
