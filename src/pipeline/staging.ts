import { accessSync, constants, lstatSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageSpec } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import {
  ARTIFACTS,
  artifactsOf,
  plannedArtifacts,
  publishedArtifacts,
  publishOrder,
  stagedPath,
  type Artifact,
} from './artifacts.js';
import type { BuildContext } from '../context/build-context.js';
import type { Registration } from '../context/undo-list.js';

/** Checks of the output folder: nothing exists under a final name, the folder is writable. */
export function checkOutputs(spec: ImageSpec): void {
  for (const { final } of publishedArtifacts(plannedArtifacts(spec))) {
    // lstat: a symlink under a final name counts, even one that points nowhere.
    if (lstatSync(final, { throwIfNoEntry: false }) !== undefined) {
      throw new UsageError(
        `${final} already exists; image-factory never overwrites a finished image. Move it away or build in another folder.`,
      );
    }
  }
  try {
    accessSync(spec.outputDir, constants.W_OK);
  } catch {
    throw new UsageError(`the output folder ${spec.outputDir} does not exist or is not writable.`);
  }
}

/** The folder a build works in, next to its final files, and the raw disk it installs onto. */
export interface Staging {
  dir: string;
  /** The raw disk (the image itself for raw; the source of the other formats). */
  raw: string;
  entry: Registration;
}

/** `.<stem>.partial-XXXXXX` in the output folder: removed with all it holds unless the build publishes. */
export async function openStaging(ctx: BuildContext): Promise<Staging> {
  const { spec, host, cleanup } = ctx;
  const prefix = join(spec.outputDir, `.${spec.stem}.partial-`);
  const dir = await host.makeTempDir(prefix);
  const entry = cleanup.register({ kind: 'path', path: dir });
  // qemu under qemu:///system runs as its own user and must reach the disk.
  await host.chmod(dir, 0o755);
  return { dir, raw: join(dir, ARTIFACTS.raw.name(spec.stem, 'raw')), entry };
}

/**
 * Link the finished files to their final names — the raw file kept on
 * request, the image, the reports, the image's checksum once the image is
 * whole, and the list of every file's checksum last — and remove the staging
 * folder. Nothing under a final name is ever overwritten; a file published
 * before a failure here is removed by the undo registered for it.
 */
export async function publishImage(ctx: BuildContext, staging: Staging, artifacts: readonly Artifact[]): Promise<void> {
  const published = [];
  for (const artifact of publishOrder(artifacts)) {
    await publishFile(ctx, stagedPath(artifact), artifact.final);
    // Registered once it is this build's: a file that appeared under the name is never removed.
    published.push(ctx.cleanup.register({ kind: 'path', path: artifact.final }));
  }
  // Whole: the published files are the user's now.
  for (const entry of published) ctx.cleanup.forget(entry);
  for (const image of artifactsOf(artifacts, 'image')) ctx.reporter.info(`Successfully created ${image.final}`);
  await ctx.cleanup.release(staging.entry);
}

async function publishFile(ctx: BuildContext, from: string, to: string): Promise<void> {
  try {
    await ctx.host.publish(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new Error(`${to} appeared while the build ran; it was left untouched and this build's result discarded`);
    }
    throw error;
  }
}
