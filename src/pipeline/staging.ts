import { accessSync, constants, lstatSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageSpec } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import type { BuildContext } from './context.js';
import type { Registration } from './resources.js';

/** Paths of everything a build of this spec publishes. */
export interface OutputPaths {
  image: string;
  checksum: string;
  raw?: string;
  consoleLog: string;
}

export function outputPaths(spec: ImageSpec): OutputPaths {
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
    // lstat: a symlink under a final name counts, even one that points nowhere.
    if (path && lstatSync(path, { throwIfNoEntry: false }) !== undefined) {
      throw new UsageError(
        `${path} already exists; image-factory never overwrites a finished image. Move it away or build in another folder.`,
      );
    }
  }
  try {
    accessSync(spec.outputDir, constants.W_OK);
  } catch {
    throw new UsageError(`the output folder ${spec.outputDir} does not exist or is not writable.`);
  }
}

/** The folder a build works in, next to its final files, and the names of what it makes there. */
export interface Staging {
  dir: string;
  raw: string;
  /** The image in its final format (the raw file itself for raw). */
  image: string;
  checksum: string;
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
  const raw = join(dir, `${spec.stem}.raw`);
  return {
    dir,
    raw,
    image: spec.format === 'qcow2' ? join(dir, `${spec.stem}.qcow2`) : raw,
    checksum: join(dir, `${spec.stem}.${spec.format}.sha256sum`),
    entry,
  };
}

/**
 * Link the finished files to their final names — the raw file kept on
 * request, the image, and the checksum last, once the image is whole — and
 * remove the staging folder. Nothing under a final name is ever overwritten.
 */
export async function publishImage(ctx: BuildContext, staging: Staging, paths: OutputPaths): Promise<void> {
  if (paths.raw) await publishFile(ctx, staging.raw, paths.raw);
  await publishFile(ctx, staging.image, paths.image);
  await publishFile(ctx, staging.checksum, paths.checksum);
  ctx.reporter.info(`Successfully created ${paths.image}`);
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
