import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { chmod, link, mkdtemp, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageSpec } from '../config/image-spec.js';
import { formatBytes, formatDuration } from '../config/units.js';
import { UsageError } from '../config/usage-error.js';
import { chooseAccelerator, kvmStatus } from '../host/accelerator.js';
import { Host } from '../host/host.js';
import { commandsSudoRefuses, sudoersLine } from '../host/privileges.js';
import { missingRequirements, programsOf, REQUIREMENTS } from '../host/programs.js';
import { foldersWithoutSearch, qemuSystemUser } from '../host/qemu-access.js';
import { bootTest, type BootTestResult } from './boot-test.js';
import { writeChecksum } from './checksum.js';
import type { BuildContext, Downloader } from './context.js';
import { convertToQcow2 } from './convert.js';
import { createRawDisk } from './disk.js';
import { fetchInstaller, type FetchedInstaller } from './fetch.js';
import { serveAnswerFile } from './answer-server.js';
import { answerFileArgument, injectableAnswerFile, runInstaller } from './install.js';
import { runPostBuildCommand } from './post-build.js';
import type { Reporter, Step } from './reporter.js';
import { CleanupStack, type Resource } from './resources.js';
import { scrubImage } from './scrub.js';
import { uploadImage, UploadError, type UploadOutcome } from './upload.js';

export interface BuildOptions {
  spec: ImageSpec;
  reporter: Reporter;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Told whenever the list of things to undo changes (the action keeps it in its state). */
  onResources?: (pending: Resource[]) => void;
  download?: Downloader;
  /** Overrides the KVM probe (tests). */
  kvmUsable?: boolean;
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
  rawPath?: string;
  consoleLog: string;
  accelerator: 'kvm' | 'tcg';
  removedLogs: string[];
  zeroing: 'discard' | 'zerofree' | 'none';
  uploads: UploadOutcome[];
  cacheHit: boolean;
  /** The installer files used, in the cache folder. */
  installer: FetchedInstaller;
  /** Seconds the boot test took to see the system come up (when it ran). */
  bootSeconds?: number;
  cloudInitFinished?: boolean;
  steps: Array<{ step: Step; durationMs: number }>;
}

/** A build that failed in a step; cleanup has already run. */
export class BuildError extends Error {
  constructor(
    readonly step: Step,
    readonly cause: unknown,
    readonly cleanupFailures: string[] = [],
    /** The finished image, when the failure came after it was published (upload, post-build): it stays. */
    readonly result?: BuildResult,
  ) {
    super(`${step} step failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'BuildError';
  }
}

/** Paths of everything a build of this spec publishes. */
export function outputPaths(spec: ImageSpec): { image: string; checksum: string; raw?: string; consoleLog: string } {
  const image = join(spec.outputDir, `${spec.stem}.${spec.format}`);
  return {
    image,
    checksum: `${image}.sha256sum`,
    raw: spec.format === 'qcow2' && spec.keepRaw ? join(spec.outputDir, `${spec.stem}.raw`) : undefined,
    consoleLog: join(spec.outputDir, `${spec.stem}.console.log`),
  };
}

/** Checks of the output folder: nothing exists under a final name, the folder is writable. */
export function checkOutputs(spec: ImageSpec): void {
  const paths = outputPaths(spec);
  for (const path of [paths.image, paths.checksum, paths.raw]) {
    if (path && existsSync(path)) {
      throw new UsageError(`${path} already exists; image-factory never overwrites a finished image. Move it away or build in another folder.`);
    }
  }
  try {
    accessSync(spec.outputDir, constants.W_OK);
  } catch {
    throw new UsageError(`the output folder ${spec.outputDir} does not exist or is not writable.`);
  }
}

/** Checks of the host: the programs a build runs, and sudo for a normal user. */
export function checkHost(spec: ImageSpec): void {
  const isRoot = (process.getuid?.() ?? 0) === 0;
  // setfacl is needed only where qemu must be let through a private folder.
  const needsAcl = isRoot && qemuSystemUser() !== undefined && foldersWithoutSearch(join(spec.outputDir, 'x')).length > 0;
  const missing = missingRequirements(REQUIREMENTS.filter((requirement) => needsAcl || !requirement.programs.includes('setfacl')));
  if (missing.length) {
    const apt = [...new Set(missing.flatMap((requirement) => requirement.packages['apt-get']))].join(' ');
    const dnf = [...new Set(missing.flatMap((requirement) => requirement.packages.dnf))].join(' ');
    throw new UsageError(
      `missing programs: ${programsOf(missing)}. Install them (apt-get install ${apt}, or dnf install ${dnf}), or run with --install-dependencies.`,
    );
  }
  if (!isRoot) {
    const refused = commandsSudoRefuses();
    if (refused.length) {
      throw new UsageError(
        `building as a normal user runs a few steps as root through 'sudo -n', but sudo refuses ${refused.join(', ')} without a password. ` +
          `Allow exactly the build's root commands with a sudoers rule (visudo -f /etc/sudoers.d/image-factory):\n  ${sudoersLine()}`,
      );
    }
  }
}

/** Checks that need nothing created: they fail with a UsageError (exit 2). */
export function preflight(spec: ImageSpec, dryRun: boolean, kvmUsable?: boolean): { accelerator: 'kvm' | 'tcg'; warning?: string } {
  const chosen = chooseAccelerator(spec.accelerator, kvmUsable === undefined ? kvmStatus() : { usable: kvmUsable, reason: 'disabled by the caller' });
  if (chosen.error) throw new UsageError(chosen.error);
  if (dryRun) return chosen;
  checkOutputs(spec);
  checkHost(spec);
  return chosen;
}

/**
 * The whole build: fetch → disk → install → scrub → qcow2 → checksum →
 * publish → upload → post-build. Everything created is registered for undo
 * before it is created and undone on any failure or interruption.
 */
export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const { spec, reporter } = options;
  const dryRun = options.dryRun ?? false;
  const chosen = preflight(spec, dryRun, options.kvmUsable);
  if (chosen.warning) reporter.warning(chosen.warning);

  const host = new Host(reporter, dryRun, options.signal);
  const cleanup = new CleanupStack(host.uninterruptible(), options.onResources);
  const ctx: BuildContext = { spec, host, reporter, cleanup, dryRun, signal: options.signal, download: options.download };
  const steps: BuildResult['steps'] = [];
  const paths = outputPaths(spec);

  let current: Step = 'fetch';
  let published: BuildResult | undefined;
  const step = async <T>(name: Step, work: () => Promise<T>): Promise<T> => {
    current = name;
    const started = Date.now();
    reporter.stepStarted(name);
    try {
      const result = await work();
      steps.push({ step: name, durationMs: Date.now() - started });
      reporter.stepFinished(name, Date.now() - started, true);
      return result;
    } catch (error) {
      reporter.stepFinished(name, Date.now() - started, false);
      throw error;
    }
  };

  try {
    const installer = await step('fetch', () => fetchInstaller(ctx));

    const staging = dryRun
      ? join(spec.outputDir, `.${spec.stem}.partial-XXXXXX`)
      : await mkdtemp(join(spec.outputDir, `.${spec.stem}.partial-`));
    const stagingEntry = cleanup.register({ kind: 'path', path: staging });
    // qemu under qemu:///system runs as its own user and must reach the disk.
    if (!dryRun) await chmod(staging, 0o755);
    const rawPath = join(staging, `${spec.stem}.raw`);

    await step('disk', () => createRawDisk(ctx, rawPath));
    // A random suffix keeps two builds of one image on one host apart.
    const domain = `${spec.stem}-${dryRun ? 'XXXXXX' : randomBytes(3).toString('hex')}`;
    await step('install', async () => {
      const injectedAnswerFile = await injectableAnswerFile(ctx, staging);
      const server = await serveAnswerFile(ctx);
      try {
        const answerArgument = server ? answerFileArgument(spec, server.url) : undefined;
        await runInstaller(ctx, {
          domain,
          diskPath: rawPath,
          consoleLog: paths.consoleLog,
          accelerator: chosen.accelerator,
          installer,
          injectedAnswerFile,
          answerArgument,
        });
      } finally {
        await server?.close();
      }
    });
    const scrubbed = await step('scrub', () => scrubImage(ctx, rawPath));

    let imageStaged = rawPath;
    if (spec.format === 'qcow2') {
      imageStaged = join(staging, `${spec.stem}.qcow2`);
      await step('convert', () => convertToQcow2(ctx, rawPath, imageStaged));
    }
    const checksumStaged = join(staging, `${spec.stem}.${spec.format}.sha256sum`);
    const sha256 = await step('checksum', () => writeChecksum(ctx, imageStaged, checksumStaged, `${spec.stem}.${spec.format}`));

    // Before anything is published or uploaded: an image that does not boot goes nowhere.
    let boot: BootTestResult | undefined;
    if (spec.bootTest.enabled) {
      const image = imageStaged;
      boot = await step('boot-test', () => bootTest(ctx, image, chosen.accelerator));
    }

    await step('publish', async () => {
      if (dryRun) return;
      // link() refuses to replace an existing file: nothing under a final name is
      // ever overwritten, and the checksum file appears last, once the image is whole.
      if (paths.raw) await publishFile(rawPath, paths.raw);
      await publishFile(imageStaged, paths.image);
      await publishFile(checksumStaged, paths.checksum);
      reporter.info(`Successfully created ${paths.image}`);
    });
    await cleanup.release(stagingEntry);

    const info = dryRun ? { size: 0, blocks: 0 } : await stat(paths.image);
    published = {
      image: `${spec.stem}.${spec.format}`,
      imagePath: paths.image,
      format: spec.format,
      size: info.size,
      diskUsage: info.blocks * 512,
      sha256,
      checksumPath: paths.checksum,
      rawPath: paths.raw,
      consoleLog: paths.consoleLog,
      accelerator: chosen.accelerator,
      removedLogs: scrubbed.removed,
      zeroing: scrubbed.zeroing,
      uploads: [],
      cacheHit: !installer.downloaded,
      installer,
      bootSeconds: boot?.seconds,
      cloudInitFinished: boot?.cloudInitFinished,
      steps,
    };
    const result = published;
    try {
      result.uploads = await step('upload', () => uploadImage(ctx, { image: paths.image, checksum: paths.checksum }));
    } catch (error) {
      if (error instanceof UploadError) result.uploads = error.outcomes;
      throw error;
    }
    if (spec.postBuildCommand) {
      const command = spec.postBuildCommand;
      await step('post-build', () => runPostBuildCommand(ctx, command, paths.image));
    }
    return result;
  } catch (error) {
    const failures = await cleanup.unwind();
    for (const failure of failures) reporter.warning(failure);
    if (!dryRun && steps.some((done) => done.step === 'disk') && existsSync(paths.consoleLog)) {
      reporter.info(`the installer's console output is in ${paths.consoleLog}`);
    }
    throw new BuildError(error instanceof UploadError ? 'upload' : current, error, failures, published);
  }
}

async function publishFile(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new Error(`${to} appeared while the build ran; it was left untouched and this build's result discarded`);
    }
    throw error;
  }
  await unlink(from);
}

export function describeResult(result: BuildResult): string {
  const lines = [
    `image:       ${result.imagePath}`,
    `size:        ${formatBytes(result.size)} (${formatBytes(result.diskUsage)} on disk)`,
    `sha256:      ${result.sha256}`,
    `accelerator: ${result.accelerator}`,
    ...(result.bootSeconds !== undefined
      ? [`boot test:   came up in ${result.bootSeconds.toFixed(1)} s${result.cloudInitFinished ? ', cloud-init finished' : ''}`]
      : []),
    `steps:       ${result.steps.map((s) => `${s.step} ${formatDuration(s.durationMs)}`).join(', ')}`,
  ];
  return lines.join('\n');
}
