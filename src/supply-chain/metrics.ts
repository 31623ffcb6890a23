import type { Step } from '../common/reporter.js';
import type { InstallPhases } from '../vm/install-watch.js';

export type { InstallPhases };

/** The schema's name and version a metrics file declares (docs/metrics.md, docs/metrics.schema.json). */
export const METRICS_SCHEMA = 'image-factory-metrics/1';

/** How many builds a history keeps: the last twelve (a year of monthly builds). */
export const HISTORY_LENGTH = 12;

/** `<stem>.metrics.json`: where a build's time and bytes went (version 1). */
export interface BuildMetrics {
  schema: typeof METRICS_SCHEMA;
  image: string;
  name: string;
  date: string;
  arch: string;
  format: string;
  /** Each step done before the metrics were written, in order; seconds. */
  steps: Array<{ step: Step; seconds: number }>;
  install: InstallPhases & { writtenBytes: number };
  scrub: { applianceLaunchSeconds: number; allocatedBefore: number; allocatedAfter: number };
  /** The provisioning boot, when the build has provisioners: to SSH, each provisioner (its line), the power-off. */
  provision?: {
    toSshSeconds: number;
    provisioners: Array<{ provisioner: string; seconds: number }>;
    powerOffSeconds: number;
  };
  images: Array<{ format: string; size: number; allocated: number }>;
  packages: number;
  host: {
    accelerator: string;
    cpus: number;
    versions: { qemu: string; libvirt: string; virtInstall: string; libguestfs: string };
  };
  peakMemoryBytes: number;
}

export function metricsJson(metrics: BuildMetrics): string {
  return `${JSON.stringify(metrics, null, 2)}\n`;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value) && value >= 0;

/**
 * An earlier build's metrics, checked for what the history reads (schema,
 * image, date, steps, images, packages); throws an Error saying what is wrong.
 * The file is not trusted: numbers must be numbers, names strings.
 */
export function parseMetrics(text: string): BuildMetrics {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(`is not JSON (${(error as Error).message})`);
  }
  if (!isObject(data) || data.schema !== METRICS_SCHEMA)
    throw new Error(`is not a metrics file of schema ${METRICS_SCHEMA} (its "schema" differs)`);
  for (const key of ['image', 'name', 'date'] as const)
    if (typeof data[key] !== 'string') throw new Error(`has no string "${key}"`);
  if (!isCount(data.packages)) throw new Error('has no "packages" count');
  const steps = data.steps;
  if (!Array.isArray(steps) || !steps.every((s) => isObject(s) && typeof s.step === 'string' && isCount(s.seconds)))
    throw new Error('has no "steps" list of {step, seconds}');
  const images = data.images;
  if (!Array.isArray(images) || !images.every((i) => isObject(i) && isCount(i.size) && isCount(i.allocated)))
    throw new Error('has no "images" list of {format, size, allocated}');
  return data as unknown as BuildMetrics;
}

/** The builds in date order (oldest first), the last HISTORY_LENGTH of them, one per image name. */
export function boundedHistory(builds: readonly BuildMetrics[]): BuildMetrics[] {
  const byImage = new Map<string, BuildMetrics>();
  for (const build of builds) byImage.set(build.image, build);
  return [...byImage.values()].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0)).slice(-HISTORY_LENGTH);
}

/** Seconds of one step of a build (0 when it did not run). */
export function stepSeconds(build: BuildMetrics, step: Step): number {
  return build.steps.filter((entry) => entry.step === step).reduce((sum, entry) => sum + entry.seconds, 0);
}

/** Seconds of every step of a build. */
export function totalSeconds(build: BuildMetrics): number {
  return build.steps.reduce((sum, entry) => sum + entry.seconds, 0);
}

/** One row of the step comparison: this build's seconds and the previous build's (undefined when it had none). */
export interface StepComparison {
  step: Step;
  seconds?: number;
  previous?: number;
}

/** This build's steps beside the previous build's, in this build's order, then steps only the previous had. */
export function compareSteps(current: BuildMetrics, previous: BuildMetrics | undefined): StepComparison[] {
  const rows: StepComparison[] = current.steps.map((entry) => ({
    step: entry.step,
    seconds: entry.seconds,
    previous: previous?.steps.some((p) => p.step === entry.step) ? stepSeconds(previous, entry.step) : undefined,
  }));
  for (const entry of previous?.steps ?? [])
    if (!rows.some((row) => row.step === entry.step)) rows.push({ step: entry.step, previous: entry.seconds });
  return rows;
}

const secondsText = (seconds: number | undefined): string => (seconds === undefined ? '-' : `${seconds.toFixed(1)} s`);

/** The comparison as text for the terminal: one line a step, then size and packages, against the previous build. */
export function comparisonText(current: BuildMetrics, previous: BuildMetrics | undefined): string {
  if (!previous) return 'no previous metrics to compare with (previous-metrics)';
  const lines = [`compared with ${previous.image} (${previous.date}):`];
  const rows = compareSteps(current, previous);
  const width = Math.max(...rows.map((row) => row.step.length));
  for (const row of rows)
    lines.push(
      `  ${row.step.padEnd(width)}  ${secondsText(row.seconds).padStart(9)}  was ${secondsText(row.previous)}`,
    );
  lines.push(
    `  ${'total'.padEnd(width)}  ${secondsText(totalSeconds(current)).padStart(9)}  was ${secondsText(totalSeconds(previous))}`,
  );
  const size = (build: BuildMetrics): number => build.images[0]?.size ?? 0;
  lines.push(
    `  image size ${size(current)} bytes, was ${size(previous)}; packages ${current.packages}, was ${previous.packages}`,
  );
  return lines.join('\n');
}
