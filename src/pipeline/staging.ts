import { accessSync, constants, lstatSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageFormat, ImageSpec } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import type { BuildContext } from '../context/build-context.js';
import type { Registration } from '../context/undo-list.js';

/** One image of the build: its format, its file and its `.sha256sum`. */
export interface ImageFile {
  format: ImageFormat;
  path: string;
  checksum: string;
}

/** Paths of everything a build of this spec publishes. */
export interface OutputPaths {
  /** The first format's image and checksum. */
  image: string;
  checksum: string;
  /** Every format's, in the order of `format`. */
  images: ImageFile[];
  raw?: string;
  consoleLog: string;
  manifest: string;
  packages: string;
  sbom: string;
  /** What changed since the previous manifest, when there is one (previous-manifest). */
  changes?: string;
  /** Every published file's SHA-256 (`sha256sum -c`, attest-build-provenance's subject-checksums). */
  sums: string;
}

/** The images of the spec's formats in `dir`. */
function imageFiles(spec: ImageSpec, dir: string): ImageFile[] {
  return spec.formats.map((format) => {
    const path = join(dir, `${spec.stem}.${format}`);
    return { format, path, checksum: `${path}.sha256sum` };
  });
}

export function outputPaths(spec: ImageSpec): OutputPaths {
  const images = imageFiles(spec, spec.outputDir);
  return {
    image: images[0].path,
    checksum: images[0].checksum,
    images,
    // keep-raw: the raw disk beside images of other formats.
    raw: !spec.formats.includes('raw') && spec.keepRaw ? join(spec.outputDir, `${spec.stem}.raw`) : undefined,
    consoleLog: join(spec.outputDir, `${spec.stem}.console.log`),
    manifest: join(spec.outputDir, `${spec.stem}.manifest.json`),
    packages: join(spec.outputDir, `${spec.stem}.packages`),
    sbom: join(spec.outputDir, `${spec.stem}.cdx.json`),
    changes: spec.previousManifest ? join(spec.outputDir, `${spec.stem}.changes`) : undefined,
    sums: join(spec.outputDir, `${spec.stem}.SHA256SUMS`),
  };
}

/** Checks of the output folder: nothing exists under a final name, the folder is writable. */
export function checkOutputs(spec: ImageSpec): void {
  const paths = outputPaths(spec);
  const images = paths.images.flatMap((image) => [image.path, image.checksum]);
  for (const path of [...images, paths.raw, ...reportPaths(paths), paths.sums]) {
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

/** The reports published beside the image: manifest, package list, SBOM, and the changes when compared. */
export function reportPaths(paths: OutputPaths): string[] {
  return [paths.manifest, paths.packages, paths.sbom, ...(paths.changes ? [paths.changes] : [])];
}

/** The folder a build works in, next to its final files, and the names of what it makes there. */
export interface Staging {
  dir: string;
  raw: string;
  /** The image in its first format (the raw file itself for raw), and its checksum. */
  image: string;
  checksum: string;
  /** Every format's image (the raw file itself for raw) and checksum, in the order of `format`. */
  images: ImageFile[];
  /** The same names as the final ones, in the staging folder. */
  manifest: string;
  packages: string;
  sbom: string;
  changes: string;
  sums: string;
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
  const images = imageFiles(spec, dir);
  return {
    dir,
    raw,
    image: images[0].path,
    checksum: images[0].checksum,
    images,
    manifest: join(dir, `${spec.stem}.manifest.json`),
    packages: join(dir, `${spec.stem}.packages`),
    sbom: join(dir, `${spec.stem}.cdx.json`),
    changes: join(dir, `${spec.stem}.changes`),
    sums: join(dir, `${spec.stem}.SHA256SUMS`),
    entry,
  };
}

/**
 * Link the finished files to their final names — the raw file kept on
 * request, the image, the reports, the image's checksum once the image is
 * whole, and the list of every file's checksum last — and remove the staging
 * folder. Nothing under a final name is ever overwritten; a file published
 * before a failure here is removed by the undo registered for it.
 */
export async function publishImage(ctx: BuildContext, staging: Staging, paths: OutputPaths): Promise<void> {
  const images = staging.images.map((image, index) => [image, paths.images[index]] as const);
  const pairs: Array<[string, string | undefined]> = [
    [staging.raw, paths.raw],
    ...images.map(([from, to]): [string, string] => [from.path, to.path]),
    [staging.manifest, paths.manifest],
    [staging.packages, paths.packages],
    [staging.sbom, paths.sbom],
    [staging.changes, paths.changes],
    ...images.map(([from, to]): [string, string] => [from.checksum, to.checksum]),
    [staging.sums, paths.sums],
  ];
  const published = [];
  for (const [from, to] of pairs) {
    if (!to) continue;
    await publishFile(ctx, from, to);
    // Registered once it is this build's: a file that appeared under the name is never removed.
    published.push(ctx.cleanup.register({ kind: 'path', path: to }));
  }
  // Whole: the published files are the user's now.
  for (const entry of published) ctx.cleanup.forget(entry);
  for (const image of paths.images) ctx.reporter.info(`Successfully created ${image.path}`);
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
