import type { Zeroing } from '../guest/zero-free-space.js';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import type { Arch, Firmware, ImageSpec } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import { chooseAccelerator, kvmStatus } from '../host/accelerator.js';
import { foreignArchReason } from '../common/arch.js';
import { checkHost } from '../host/host-checks.js';
import type { Host } from '../host/host.js';
import { SystemHost } from '../host/system-host.js';
import { bootTest, type BootTestResult } from './boot-test.js';
import { writeChecksum } from './checksum.js';
import type { BuildContext, Downloader } from '../context/build-context.js';
import { convertImage } from './convert.js';
import { createRawDisk } from './disk.js';
import { dryRunHost } from './dry-run.js';
import { fetchInstaller, type FetchedInstaller } from './fetch.js';
import { installSystem } from './install.js';
import { runPostBuildCommand } from './post-build.js';
import type { Reporter, Step } from '../common/reporter.js';
import type { Resource } from '../context/undo-list.js';
import { CleanupStack } from './resources.js';
import { writeReports, type Reports } from './reports.js';
import { loadPreviousManifest } from '../supply-chain/previous-manifest.js';
import type { Changes } from '../supply-chain/changes.js';
import type { GeneralizeRow } from '../guest/generalize.js';
import type { Layout } from '../guest/layout.js';
import { scrubImage, type ScrubResult } from './scrub.js';
import {
  checkOutputs,
  openStaging,
  outputPaths,
  publishImage,
  reportPaths,
  type OutputPaths,
  type Staging,
} from './staging.js';
import { uploadImage, UploadError, type UploadOutcome } from './upload.js';

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
  download?: Downloader;
  /** Overrides the KVM probe (tests). */
  kvmUsable?: boolean;
  /** Called once the checks of the machine passed, before anything is created (the log file is created here). */
  onChecked?: () => void;
}

export interface BuildResult {
  /** File name of the finished image. */
  image: string;
  imagePath: string;
  format: ImageSpec['format'];
  /** Size of the image file in bytes. */
  size: number;
  /** Bytes the image file occupies on disk (less than size when sparse). */
  diskUsage: number;
  sha256: string;
  checksumPath: string;
  /** Every format's image, the first being the one above. */
  images: Array<{ format: ImageSpec['format']; path: string; checksumPath: string; sha256: string; size: number }>;
  rawPath?: string;
  /** `<stem>.manifest.json`, `<stem>.packages`, `<stem>.cdx.json` and `<stem>.SHA256SUMS`. */
  manifestPath: string;
  packagesPath: string;
  sbomPath: string;
  checksumsPath: string;
  /** `<stem>.changes`, when a previous manifest was given. */
  changesPath?: string;
  /** What changed since the previous manifest, when it was compared. */
  changes?: Changes;
  packageCount: number;
  distribution: string;
  kernel: string;
  consoleLog: string;
  accelerator: 'kvm' | 'tcg';
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
  uploads: UploadOutcome[];
  cacheHit: boolean;
  /** The installer files used, in the cache folder. */
  installer: FetchedInstaller;
  /** Seconds the boot test took to see the system come up (when it ran). */
  bootSeconds?: number;
  cloudInitFinished?: boolean;
  steps: Array<{ step: Step; durationMs: number }>;
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
export function chooseBuildAccelerator(spec: ImageSpec, reporter: Reporter, kvmUsable?: boolean): 'kvm' | 'tcg' {
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
export function describeBuild(spec: ImageSpec, images: readonly { path: string }[]): string {
  const names = images.map((image) => basename(image.path)).join(', ');
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
  // Read (or downloaded) before anything is created: a bad manifest is bad input.
  const previous = spec.previousManifest
    ? await loadPreviousManifest(spec.previousManifest, {
        reporter,
        live: host.live,
        download: options.download,
        signal: options.signal,
      })
    : undefined;
  options.onChecked?.();
  const paths = outputPaths(spec);
  reporter.info(describeBuild(spec, paths.images));
  const run = new BuildRun(options, host);
  const { ctx } = run;
  try {
    const installer = await run.step('fetch', () => fetchInstaller(ctx));
    const staging = await run.step('disk', () => stageDisk(ctx));
    const install = {
      domain: `${spec.stem}-${ctx.host.uniqueSuffix(3)}`,
      diskPath: staging.raw,
      consoleLog: paths.consoleLog,
      staging: staging.dir,
    };
    await run.step('install', () => installSystem(ctx, install, installer, accelerator));
    const scrubbed = await run.step('scrub', () => scrubImage(ctx, staging.raw, accelerator));
    if (spec.formats.some((format) => format !== 'raw')) await run.step('convert', () => convertImages(ctx, staging));
    const sums = await run.step('checksum', () => writeChecksums(ctx, staging));
    const sha256 = sums[0];
    const reports = await run.step('reports', () =>
      writeReports(ctx, staging, paths, { sums, inventory: scrubbed.inventory, installer, previous }),
    );
    // Before anything is published or uploaded: an image that does not boot goes nowhere.
    const boot = spec.bootTest.enabled
      ? await run.step('boot-test', () => bootTest(ctx, staging.image, accelerator))
      : undefined;
    await run.step('publish', () => publishImage(ctx, staging, paths));
    const result = await run.published(paths, { sha256, sums, accelerator, scrubbed, installer, boot, reports });
    const upload = {
      image: paths.image,
      checksum: paths.checksum,
      more: paths.images.slice(1).map((image) => ({ image: image.path, checksum: image.checksum })),
      reports: reportPaths(paths),
      sums: paths.sums,
    };
    result.uploads = await run.step('upload', () => uploadImage(ctx, upload));
    const postBuild = spec.postBuildCommand;
    if (postBuild) await run.step('post-build', () => runPostBuildCommand(ctx, postBuild, paths.image));
    return result;
  } catch (error) {
    throw await run.fail(error, paths);
  }
}

/** Each format but raw, converted from the one raw disk. */
async function convertImages(ctx: BuildContext, staging: Staging): Promise<void> {
  for (const image of staging.images) {
    if (image.format !== 'raw') await convertImage(ctx, staging.raw, image.path, image.format);
  }
}

/** Each image's `.sha256sum`; their digests, in the order of the formats. */
async function writeChecksums(ctx: BuildContext, staging: Staging): Promise<string[]> {
  const sums: string[] = [];
  for (const image of staging.images) sums.push(await writeChecksum(ctx, image.path, image.checksum));
  return sums;
}

/** The staging folder, and the raw disk in it. */
async function stageDisk(ctx: BuildContext): Promise<Staging> {
  const staging = await openStaging(ctx);
  await createRawDisk(ctx, staging.raw);
  return staging;
}

interface Outcome {
  sha256: string;
  sums: string[];
  accelerator: 'kvm' | 'tcg';
  scrubbed: ScrubResult;
  installer: FetchedInstaller;
  boot?: BootTestResult;
  reports: Reports;
}

/** One build in progress: its context, the steps it has done, and what to say when it fails. */
class BuildRun {
  readonly ctx: BuildContext;
  private readonly steps: BuildResult['steps'] = [];
  private current: Step = 'fetch';
  private result?: BuildResult;

  constructor(options: BuildOptions, host: Host) {
    const cleanup = new CleanupStack(host.uninterruptible(), options.onResources);
    this.ctx = {
      spec: options.spec,
      host,
      reporter: options.reporter,
      cleanup,
      signal: options.signal,
      download: options.download,
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

  /** The result of a published image; it stays, and is reported, whatever happens to the upload. */
  async published(paths: OutputPaths, outcome: Outcome): Promise<BuildResult> {
    const info = await this.ctx.host.stat(paths.image);
    const images: BuildResult['images'] = [];
    for (const [index, image] of paths.images.entries()) {
      const size = index === 0 ? info.size : (await this.ctx.host.stat(image.path)).size;
      images.push({
        format: image.format,
        path: image.path,
        checksumPath: image.checksum,
        sha256: outcome.sums[index],
        size,
      });
    }
    this.result = {
      image: `${this.ctx.spec.stem}.${this.ctx.spec.format}`,
      imagePath: paths.image,
      format: this.ctx.spec.format,
      size: info.size,
      diskUsage: info.blocks * 512,
      sha256: outcome.sha256,
      checksumPath: paths.checksum,
      images,
      rawPath: paths.raw,
      manifestPath: paths.manifest,
      packagesPath: paths.packages,
      sbomPath: paths.sbom,
      checksumsPath: paths.sums,
      changesPath: paths.changes,
      ...outcome.reports,
      consoleLog: paths.consoleLog,
      accelerator: outcome.accelerator,
      arch: this.ctx.spec.arch,
      firmware: this.ctx.spec.firmware,
      removedLogs: outcome.scrubbed.removed,
      generalized: outcome.scrubbed.generalized,
      zeroing: outcome.scrubbed.zeroing,
      layout: outcome.scrubbed.layout,
      uploads: [],
      cacheHit: !outcome.installer.downloaded,
      installer: outcome.installer,
      bootSeconds: outcome.boot?.seconds,
      cloudInitFinished: outcome.boot?.cloudInitFinished,
      steps: this.steps,
    };
    return this.result;
  }

  /** Undo everything still registered and say which step failed. */
  async fail(error: unknown, paths: OutputPaths): Promise<BuildError> {
    const { reporter, cleanup, host } = this.ctx;
    if (error instanceof UploadError && this.result) this.result.uploads = error.outcomes;
    const failures = await cleanup.unwind();
    for (const failure of failures) reporter.warning(failure);
    if (host.live && this.steps.some((done) => done.step === 'disk') && existsSync(paths.consoleLog)) {
      reporter.info(`the installer's console output is in ${paths.consoleLog}`);
    }
    return new BuildError(error instanceof UploadError ? 'upload' : this.current, error, failures, this.result);
  }
}
