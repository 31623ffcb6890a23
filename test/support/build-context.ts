import type { ImageSpec } from '../../src/config/image-spec.js';
import type { VmAccelerator } from '../../src/host/accelerator.js';
import type { Clock } from '../../src/host/clock.js';
import { formatCommand } from '../../src/host/command-error.js';
import { RecordingHost, type RecordingPlan } from '../../src/host/recording-host.js';
import { SystemHost } from '../../src/host/system-host.js';
import type { BuildContext } from '../../src/context/build-context.js';
import type { Reporter, Step } from '../../src/common/reporter.js';
import { CleanupStack } from '../../src/pipeline/resources.js';

/** A Reporter that keeps every line, for tests that call pipeline steps directly. */
export class RecordingReporter implements Reporter {
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(`info: ${message}`);
  }
  notice(message: string): void {
    this.lines.push(`notice: ${message}`);
  }
  warning(message: string): void {
    this.lines.push(`warning: ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
  command(argv: readonly string[]): void {
    this.lines.push(`command: ${formatCommand(argv)}`);
  }
  output(line: string): void {
    this.lines.push(`output: ${line}`);
  }
  readonly steps: Step[] = [];
  stepStarted(step: Step): void {
    this.steps.push(step);
  }
  stepFinished(): void {}
  progress(step: string, message: string): void {
    this.lines.push(`progress ${step}: ${message}`);
  }
  text(): string {
    return this.lines.join('\n');
  }
}

/** An ImageSpec with plain values, for tests of single steps. */
export function testSpec(overrides: Partial<ImageSpec> & Pick<ImageSpec, 'outputDir'>): ImageSpec {
  return {
    name: 'test-image',
    date: '2026-01-01',
    stem: 'test-image-2026-01-01',
    cacheDir: overrides.outputDir,
    format: 'qcow2',
    imageSize: 1 << 30,
    ramMiB: 512,
    cores: 1,
    installer: {
      kind: 'image',
      image: { uri: '/dev/null', display: '/dev/null', scheme: 'file', location: '/dev/null' },
    },
    answerDelivery: 'inject',
    append: '',
    osinfo: 'linux2022',
    accelerator: 'tcg',
    arch: 'x86_64',
    firmware: 'bios',
    installTimeoutMs: 60_000,
    stallTimeoutMs: 0,
    installerLogs: false,
    keepRaw: false,
    previousMetrics: [],
    skipUnchanged: false,
    zeroFreeSpace: 'none',
    generalize: 'no',
    compress: 'none',
    bootTest: { enabled: false, timeoutMs: 60_000, expect: 'login:', cloudInit: false, ramMiB: 512 },
    upload: false,
    uploads: [],
    ...overrides,
    formats: overrides.formats ?? [overrides.format ?? 'qcow2'],
  };
}

/** A BuildContext around `spec`: on the machine, or on a recording host (no root, no VM; it records what ran). */
export function testContext(
  spec: ImageSpec,
  options: {
    recording?: RecordingPlan | true;
    uid?: number;
    signal?: AbortSignal;
    accelerator?: VmAccelerator;
    clock?: Clock;
  } = {},
): { ctx: BuildContext; reporter: RecordingReporter; recording?: RecordingHost } {
  const reporter = new RecordingReporter();
  const plan = options.recording === true ? {} : options.recording;
  const recording = plan === undefined ? undefined : new RecordingHost(reporter, plan, options.uid);
  const host = recording ?? new SystemHost(reporter, options.signal);
  const ctx: BuildContext = {
    spec,
    host,
    accelerator: options.accelerator ?? 'tcg',
    reporter,
    cleanup: new CleanupStack(host),
    signal: options.signal,
    clock: options.clock,
  };
  return { ctx, reporter, recording };
}
