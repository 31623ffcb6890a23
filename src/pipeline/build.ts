import type { Zeroing } from '../guest/zero-free-space.js';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import type { Arch, Firmware, ImageSpec } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import { chooseAccelerator, kvmStatus, type VmAccelerator } from '../host/accelerator.js';
import { foreignArchReason } from '../common/arch.js';
import { checkHost } from '../host/host-checks.js';
import type { Host } from '../host/host.js';
import { SystemHost } from '../host/system-host.js';
import { bootTest, type BootTestResult } from './boot-test.js';
import { writeChecksum } from './checksum.js';
import type { BuildContext } from '../context/build-context.js';
import { convertImage } from './convert.js';
import { createRawDisk } from './disk.js';
import { dryRunHost } from './dry-run.js';
import { fetchInstaller, type FetchedInstaller } from './fetch.js';
import { installSystem } from './install.js';
import type { InstallPhases } from '../vm/install-watch.js';
import type { MeasuredFigures } from './metrics.js';
import { provisionSystem } from './provision.js';
import type { BootCheck } from './guest-ssh.js';
import { runPostBuildCommand } from './post-build.js';
import type { Reporter, Step } from '../common/reporter.js';
import type { Resource } from '../context/undo-list.js';
import { CleanupStack } from './resources.js';
import { writeReports, type Reports } from './reports.js';
import { loadPreviousManifest, type LoadedPrevious } from '../supply-chain/previous-manifest.js';
import { checkSigningKey } from '../supply-chain/sign.js';
import { loadPreviousMetrics } from '../supply-chain/previous-metrics.js';
import type { BuildMetrics } from '../supply-chain/metrics.js';
import { decideUnchanged } from '../supply-chain/unchanged.js';
import type { Changes } from '../supply-chain/changes.js';
import type { GeneralizeRow } from '../guest/generalize.js';
import type { Layout } from '../guest/layout.js';
import { scrubImage, type ScrubResult } from './scrub.js';
import { checkOutputs, openStaging, publishImage, type Staging } from './staging.js';
import { uploadFailure, uploadImage, type UploadOutcome } from './upload.js';
import {
  ARTIFACTS,
  artifactsOf,
  firstImage,
  pathOf,
  plannedArtifacts,
  stagedArtifacts,
  stagedPath,
  type Artifact,
} from './artifacts.js';

export interface BuildOptions {
  spec: ImageSpec;
  reporter: Reporter;
  /** Build on a recording host: every command printed, none run, nothing created. */
  dryRun?: boolean;
  /** The host to build on (tests); the machine itself, or the dry run's recording host, otherwise. */
  host?: Host;
  signal?: AbortSignal;
  /** Told whenever the list of things to undo changes (the action keeps it in its state). */
  onResources?: (pending: Resource[]) => void;
  /** Overrides the KVM probe (tests). */
  kvmUsable?: boolean;
  /** Called once the checks of the machine passed, before anything is created (the log file is created here). */
  onChecked?: () => void;
}

export interface BuildResult {
  /**
   * Every file the build made, as the artifact table declares them (images
   * first, a format after the other): the images with their SHA-256 and
   * size, the reports with their SHA-256.
   */
  artifacts: Artifact[];
  /** Bytes the first image occupies on disk (less than its size when sparse). */
  diskUsage: number;
  /** What changed since the previous manifest, when it was compared. */
  changes?: Changes;
  /** The fingerprint of the key that signed SHA256SUMS (signing-key). */
  signingFingerprint?: string;
  packageCount: number;
  distribution: string;
  kernel: string;
  accelerator: VmAccelerator;
  /** The guest architecture. */
  arch: Arch;
  /** The firmware the VMs booted with. */
  firmware: Firmware;
  removedLogs: string[];
  /** What generalisation found and did (empty with generalize = no). */
  generalized: GeneralizeRow[];
  zeroing: Zeroing;
  /** The disk's layout as the scrub found it: partitions, file systems, what was done to each. */
  layout: Layout;
  /** Each destination's upload, as the upload step returned it ([] before it ran or without uploads). */
  uploads: UploadOutcome[];
  cacheHit: boolean;
  /** The installer files used, in the cache folder. */
  installer: FetchedInstaller;
  /** Seconds the boot test took to see the system come up (when it ran). */
  bootSeconds?: number;
  cloudInitFinished?: boolean;
  /** boot-test-command and boot-test-playbook as they ran (when the boot test had any). */
  bootChecks?: BootCheck[];
  steps: Array<{ step: Step; durationMs: number }>;
  /** What `<stem>.metrics.json` holds. */
  metrics: BuildMetrics;
  /** The earlier builds' metrics (previous-metrics), oldest first. */
  history: BuildMetrics[];
  /**
   * False when skip-unchanged found the same packages and inputs as the
   * previous manifest's: nothing was published or uploaded (the artifacts'
   * final paths were not made).
   */
  changed: boolean;
}

/** A build that failed in a step; cleanup has already run. The step's error is the `cause`. */
export class BuildError extends Error {
  constructor(
    readonly step: Step,
    cause: unknown,
    readonly cleanupFailures: string[] = [],
    /** The finished image, when the failure came after it was published (upload, post-build): it stays. */
    readonly result?: BuildResult,
  ) {
    super(`${step} step failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'BuildError';
  }
}

/** kvm or tcg, as `accelerator` asks and the host allows; a UsageError when kvm is asked for and unusable. */
export function chooseBuildAccelerator(spec: ImageSpec, reporter: Reporter, kvmUsable?: boolean): VmAccelerator {
  const foreign = foreignArchReason(spec.arch);
  const status = foreign
    ? { usable: false, reason: foreign }
    : kvmUsable === undefined
      ? kvmStatus()
      : { usable: kvmUsable, reason: 'disabled by the caller' };
  const chosen = chooseAccelerator(spec.accelerator, status);
  if (chosen.error) throw new UsageError(chosen.error);
  if (chosen.warning) reporter.warning(chosen.warning);
  return chosen.accelerator;
}

/**
 * The line a build starts with once its input is checked: the image, its
 * architecture and firmware, and the final names of its images. The date in
 * them is the build's start (a build that runs past midnight keeps the names
 * it began with).
 */
export function describeBuild(spec: ImageSpec, artifacts: readonly Artifact[]): string {
  const names = artifactsOf(artifacts, 'image')
    .map((image) => basename(image.final))
    .join(', ');
  return `Building image ${spec.name} (${spec.arch}, ${spec.firmware}) as ${names} in ${spec.outputDir}`;
}

/**
 * The whole build, step by step. Everything created is registered for undo
 * before it is created and undone on any failure or interruption.
 */
export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const { spec, reporter } = options;
  const accelerator = chooseBuildAccelerator(spec, reporter, options.kvmUsable);
  const host = options.host ?? (options.dryRun ? dryRunHost(reporter, spec) : new SystemHost(reporter, options.signal));
  // Checks of the machine, before anything is created on it.
  if (host.live) checkOutputs(spec);
  if (host.live) checkHost(spec);
  const previous = await loadPrevious(options, host.live);
  // A key that cannot sign is bad input: said now, not after an hour's build.
  if (host.live && spec.signing) await checkSigningKey(host, spec.signing);
  options.onChecked?.();
  const planned = plannedArtifacts(spec);
  reporter.info(describeBuild(spec, planned));
  const run = new BuildRun(options, host, accelerator);
  const { ctx } = run;
  const consoleLog = pathOf(planned, 'console-log') as string;
  try {
    const installer = await run.step('fetch', () => fetchInstaller(ctx));
    const staging = await run.step('disk', () => stageDisk(ctx));
    const artifacts = stagedArtifacts(planned, staging.dir);
    const install = {
      domain: `${spec.stem}-${ctx.host.uniqueSuffix(3)}`,
      diskPath: staging.raw,
      consoleLog,
      staging: staging.dir,
    };
    const phases = await run.step('install', () => installSystem(ctx, install, installer));
    const installed = (await host.stat(staging.raw)).blocks * 512;
    const provisioned = spec.provision?.provisioners.length
      ? await run.step('provision', () => provisionSystem(ctx, staging.raw, staging.dir))
      : undefined;
    const scrubbed = await run.step('scrub', () => scrubImage(ctx, staging.raw));
    if (spec.formats.some((format) => format !== 'raw'))
      await run.step('convert', () => convertImages(ctx, staging.raw, artifacts));
    await run.step('checksum', () => writeChecksums(ctx, artifacts));
    // Before the reports, so that the metrics hold its time; before anything is published or uploaded: an
    // image that does not boot goes nowhere.
    const boot = spec.bootTest.enabled
      ? await run.step('boot-test', () => bootTest(ctx, stagedPath(firstImage(artifacts))))
      : undefined;
    const figures = { ...run.figures(phases, installed, scrubbed), provision: provisioned };
    const reports = await run.step('reports', () =>
      writeReports(ctx, artifacts, { inventory: scrubbed.inventory, installer, previous: previous.manifest, figures }),
    );
    const outcome = { scrubbed, installer, boot, reports, history: previous.metrics };
    if (await run.unchanged(previous.manifest, staging, artifacts, outcome)) return run.finished();
    await run.step('publish', () => publishImage(ctx, staging, artifacts));
    await run.published(artifacts, outcome);
    const result = await run.step('upload', () => run.upload(artifacts));
    const postBuild = spec.postBuildCommand;
    if (postBuild) await run.step('post-build', () => runPostBuildCommand(ctx, postBuild, firstImage(artifacts).final));
    return result;
  } catch (error) {
    throw await run.fail(error, consoleLog);
  }
}

/** The previous manifest and metrics, read (or downloaded) before anything is created: bad ones are bad input. */
async function loadPrevious(
  options: BuildOptions,
  live: boolean,
): Promise<{ manifest?: LoadedPrevious; metrics: BuildMetrics[] }> {
  const { spec, reporter, signal } = options;
  const manifest = spec.previousManifest
    ? await loadPreviousManifest(spec.previousManifest, { reporter, live, signal })
    : undefined;
  const metrics = await loadPreviousMetrics(spec.previousMetrics, { reporter, live, signal });
  return { manifest, metrics };
}

/** Each format but raw, converted from the one raw disk. */
async function convertImages(ctx: BuildContext, raw: string, artifacts: readonly Artifact[]): Promise<void> {
  for (const image of artifactsOf(artifacts, 'image')) {
    if (image.format && image.format !== 'raw') await convertImage(ctx, raw, stagedPath(image), image.format);
  }
}

/** Each image's `.sha256sum`; each image's digest recorded in the build's list. */
async function writeChecksums(ctx: BuildContext, artifacts: readonly Artifact[]): Promise<void> {
  const checksums = artifactsOf(artifacts, 'image-checksum');
  for (const [index, image] of artifactsOf(artifacts, 'image').entries()) {
    image.sha256 = await writeChecksum(ctx, stagedPath(image), stagedPath(checksums[index]));
  }
}

/** The staging folder, and the raw disk in it. */
async function stageDisk(ctx: BuildContext): Promise<Staging> {
  const staging = await openStaging(ctx);
  await createRawDisk(ctx, staging.raw);
  return staging;
}

interface Outcome {
  scrubbed: ScrubResult;
  installer: FetchedInstaller;
  boot?: BootTestResult;
  reports: Reports;
  history: BuildMetrics[];
}

/** One build in progress: its context, the steps it has done, and what to say when it fails. */
class BuildRun {
  readonly ctx: BuildContext;
  private readonly steps: BuildResult['steps'] = [];
  private current: Step = 'fetch';
  private result?: BuildResult;
  private osRelease?: Record<string, string>;

  constructor(options: BuildOptions, host: Host, accelerator: VmAccelerator) {
    const cleanup = new CleanupStack(host.uninterruptible(), options.onResources);
    this.ctx = {
      spec: options.spec,
      host,
      accelerator,
      reporter: options.reporter,
      cleanup,
      signal: options.signal,
    };
  }

  /** Run one step: reported as it starts and ends, and timed. */
  async step<T>(name: Step, work: () => Promise<T>): Promise<T> {
    const { reporter } = this.ctx;
    this.current = name;
    const started = Date.now();
    reporter.stepStarted(name);
    try {
      const value = await work();
      this.steps.push({ step: name, durationMs: Date.now() - started });
      reporter.stepFinished(name, Date.now() - started, true);
      return value;
    } catch (error) {
      reporter.stepFinished(name, Date.now() - started, false);
      throw error;
    }
  }

  /** What the metrics take from the steps so far: their times, the install's phases, the disk's allocation. */
  figures(phases: InstallPhases, installed: number, scrubbed: ScrubResult): Omit<MeasuredFigures, 'packages'> {
    return {
      steps: [...this.steps],
      install: phases,
      allocatedAfterInstall: installed,
      allocatedAfterScrub: scrubbed.allocatedBytes,
      applianceLaunchSeconds: scrubbed.phases.find((phase) => phase.name === 'launch')?.seconds ?? 0,
    };
  }

  /**
   * skip-unchanged: when the packages and inputs equal the previous
   * manifest's, nothing is published or uploaded; the staging folder goes.
   */
  async unchanged(
    previous: LoadedPrevious | undefined,
    staging: Staging,
    artifacts: readonly Artifact[],
    outcome: Outcome,
  ): Promise<boolean> {
    const { spec, reporter, cleanup } = this.ctx;
    if (!spec.skipUnchanged) return false;
    const manifest = previous && 'manifest' in previous ? previous.manifest : undefined;
    const decision = decideUnchanged(manifest, {
      packages: outcome.scrubbed.inventory.packages,
      inputs: outcome.reports.inputs,
    });
    if (!decision.unchanged) {
      reporter.info(`skip-unchanged: publishing: ${decision.reason}`);
      return false;
    }
    reporter.info(`Unchanged (skip-unchanged): ${decision.reason}; nothing was published or uploaded.`);
    await cleanup.release(staging.entry);
    await this.published(artifacts, outcome, false);
    return true;
  }

  /** The result, once the build has one. */
  finished(): BuildResult {
    if (!this.result) throw new Error('the build has no result yet');
    return this.result;
  }

  /** The result of a published image; it stays, and is reported, whatever happens to the upload. */
  async published(artifacts: readonly Artifact[], outcome: Outcome, changed = true): Promise<void> {
    const { host, spec } = this.ctx;
    this.osRelease = outcome.scrubbed.inventory.osRelease;
    let diskUsage = 0;
    for (const [index, image] of artifactsOf(artifacts, 'image').entries()) {
      if (!changed) break;
      const info = await host.stat(image.final);
      image.size = info.size;
      if (index === 0) diskUsage = info.blocks * 512;
    }
    this.result = {
      artifacts: artifacts.filter((artifact) => !ARTIFACTS[artifact.role].onFailure),
      diskUsage,
      ...outcome.reports,
      accelerator: this.ctx.accelerator,
      arch: spec.arch,
      firmware: spec.firmware,
      removedLogs: outcome.scrubbed.removed,
      generalized: outcome.scrubbed.generalized,
      zeroing: outcome.scrubbed.zeroing,
      layout: outcome.scrubbed.layout,
      uploads: [],
      cacheHit: !outcome.installer.downloaded,
      installer: outcome.installer,
      bootSeconds: outcome.boot?.seconds,
      cloudInitFinished: outcome.boot?.cloudInitFinished,
      bootChecks: outcome.boot?.checks,
      steps: this.steps,
      metrics: outcome.reports.metrics,
      history: outcome.history,
      changed,
    };
  }

  /**
   * The published files to every destination, in the table's upload order.
   * The result carries the outcomes; a failed destination then fails the step.
   */
  async upload(artifacts: readonly Artifact[]): Promise<BuildResult> {
    const uploads = await uploadImage(this.ctx, artifacts, this.osRelease);
    if (!this.result) throw new Error('the upload comes after the publish step');
    this.result = { ...this.result, uploads };
    const failure = uploadFailure(uploads);
    if (failure) throw failure;
    return this.result;
  }

  /** Undo everything still registered and say which step failed. */
  async fail(error: unknown, consoleLog: string): Promise<BuildError> {
    const { reporter, cleanup, host } = this.ctx;
    const failures = await cleanup.unwind();
    for (const failure of failures) reporter.warning(failure);
    if (host.live && this.steps.some((done) => done.step === 'disk') && existsSync(consoleLog)) {
      reporter.info(`the installer's console output is in ${consoleLog}`);
    }
    return new BuildError(this.current, error, failures, this.result);
  }
}
