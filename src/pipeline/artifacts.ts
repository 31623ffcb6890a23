import { basename, join } from 'node:path';
import type { ImageFormat, ImageSpec } from '../config/image-spec.js';

/** What a file of a build is. */
export type ArtifactRole =
  | 'image'
  | 'image-checksum'
  | 'raw'
  | 'manifest'
  | 'packages'
  | 'sbom'
  | 'changes'
  | 'metrics'
  | 'sums'
  | 'sums-signature'
  | 'console-log'
  | 'screenshot';

/** How a build treats every file of one role. */
export interface ArtifactKind {
  /** One file for each format of `format`, in its order; otherwise one for the build. */
  perFormat?: true;
  /** Its file name, from the stem (and the format). */
  name: (stem: string, format: ImageFormat) => string;
  /** Whether a build of this spec makes it (always when unset), and the same in words. */
  when?: (spec: ImageSpec) => boolean;
  made?: string;
  /**
   * Its place in the order publishImage links the staged files to their final
   * names. Unset: written in place, not staged, not under the rule that
   * nothing is overwritten (the console log is written while the VM runs).
   */
  publish?: number;
  /** Its line's place in `SHA256SUMS`; unset: not listed. */
  sums?: number;
  /** Its place in the upload to each destination; unset: not uploaded. */
  upload?: number;
  /** The action output that names the file (the first format's, for an image). */
  output?: string;
  /** Made only when a build fails (it tells why); never part of a finished build's list. */
  onFailure?: true;
  /** Attached to the images pushed to an OCI registry as a referrer of this artifact type (OCI 1.1 `subject`). */
  referrer?: string;
}

/**
 * Every file a build produces, declared once. The order of publishing puts
 * each image's `.sha256sum` and `SHA256SUMS` after everything they vouch
 * for, so whoever waits for them finds whole files beside them; the upload
 * keeps the same order on the target.
 */
export const ARTIFACTS: Readonly<Record<ArtifactRole, ArtifactKind>> = {
  image: {
    perFormat: true,
    name: (stem, format) => `${stem}.${format}`,
    publish: 2,
    sums: 1,
    upload: 1,
    output: 'image-path',
  },
  'image-checksum': {
    perFormat: true,
    name: (stem, format) => `${stem}.${format}.sha256sum`,
    publish: 8,
    upload: 7,
    output: 'checksum-path',
  },
  // keep-raw: the raw disk beside images of other formats.
  raw: {
    name: (stem) => `${stem}.raw`,
    when: (spec) => !spec.formats.includes('raw') && spec.keepRaw,
    made: 'with keep-raw, when raw is not one of the formats',
    publish: 1,
    sums: 2,
    output: 'raw-path',
  },
  manifest: {
    name: (stem) => `${stem}.manifest.json`,
    publish: 3,
    sums: 3,
    upload: 2,
    output: 'manifest-path',
    referrer: 'application/vnd.image-factory.manifest+json',
  },
  packages: { name: (stem) => `${stem}.packages`, publish: 4, sums: 4, upload: 3, output: 'packages-path' },
  sbom: {
    name: (stem) => `${stem}.cdx.json`,
    publish: 5,
    sums: 5,
    upload: 4,
    output: 'sbom-path',
    referrer: 'application/vnd.cyclonedx+json',
  },
  // What changed since the previous manifest, when there is one.
  changes: {
    name: (stem) => `${stem}.changes`,
    when: (spec) => spec.previousManifest !== undefined,
    made: 'when there is a previous manifest',
    publish: 6,
    sums: 6,
    upload: 5,
    output: 'changes-path',
  },
  // Where the build's time and bytes went (docs/metrics.md).
  metrics: { name: (stem) => `${stem}.metrics.json`, publish: 7, sums: 7, upload: 6, output: 'metrics-path' },
  // Every published file's SHA-256 (`sha256sum -c`, attest-build-provenance's subject-checksums).
  sums: {
    name: (stem) => `${stem}.SHA256SUMS`,
    publish: 9,
    upload: 8,
    output: 'checksums-path',
    referrer: 'application/vnd.image-factory.sha256sums',
  },
  // SHA256SUMS's detached OpenPGP signature (supply-chain/sign.ts): after the list it vouches for.
  'sums-signature': {
    name: (stem) => `${stem}.SHA256SUMS.gpg`,
    when: (spec) => spec.signing !== undefined,
    made: 'with signing-key',
    publish: 10,
    upload: 9,
    output: 'checksums-signature-path',
    referrer: 'application/pgp-signature',
  },
  'console-log': { name: (stem) => `${stem}.console.log`, output: 'console-log' },
  // The installer's display, when the install watch stopped a VM that has one (vnc).
  screenshot: {
    name: (stem) => `${stem}.screen.png`,
    when: (spec) => spec.vnc !== undefined,
    made: 'with vnc, when the install watch stops the installer',
    onFailure: true,
  },
};

/** One file of a build. */
export interface Artifact {
  role: ArtifactRole;
  /** The image's format, for the roles that have one file a format. */
  format?: ImageFormat;
  /** Its path in the staging folder, once the build has one (published files only). */
  staged?: string;
  /** Its path under its final name, in the output folder. */
  final: string;
  /** Its SHA-256, once the build knows it (the images and what SHA256SUMS lists). */
  sha256?: string;
  /** Its size in bytes, once published (the images). */
  size?: number;
}

const ROLES = Object.keys(ARTIFACTS) as ArtifactRole[];

/**
 * The files a build of this spec makes, under their final names: each
 * format's image and its checksum, then the others in the table's order.
 */
export function plannedArtifacts(spec: ImageSpec): Artifact[] {
  const made = ROLES.filter((role) => ARTIFACTS[role].when?.(spec) ?? true);
  const file = (role: ArtifactRole, format?: ImageFormat): Artifact => ({
    role,
    ...(format ? { format } : {}),
    final: join(spec.outputDir, ARTIFACTS[role].name(spec.stem, format ?? spec.format)),
  });
  return [
    ...spec.formats.flatMap((format) => made.filter((role) => ARTIFACTS[role].perFormat).map((r) => file(r, format))),
    ...made.filter((role) => !ARTIFACTS[role].perFormat).map((role) => file(role)),
  ];
}

/** The same list with the staging folder's path of each file that is published. */
export function stagedArtifacts(artifacts: readonly Artifact[], dir: string): Artifact[] {
  return artifacts.map((artifact) =>
    ARTIFACTS[artifact.role].publish === undefined
      ? artifact
      : { ...artifact, staged: join(dir, basename(artifact.final)) },
  );
}

/** A published file's path in the staging folder; an error for a file that is not staged. */
export function stagedPath(artifact: Artifact): string {
  if (artifact.staged === undefined) throw new Error(`${artifact.final} is not staged`);
  return artifact.staged;
}

/** The files of the list that an order of the table names, in that order (formats in theirs). */
function inOrder(artifacts: readonly Artifact[], order: 'publish' | 'sums' | 'upload'): Artifact[] {
  const place = (artifact: Artifact): number | undefined => ARTIFACTS[artifact.role][order];
  return artifacts.filter((artifact) => place(artifact) !== undefined).sort((a, b) => place(a)! - place(b)!);
}

/** The files staged and then published under their final names, in the order they are published. */
export const publishOrder = (artifacts: readonly Artifact[]): Artifact[] => inOrder(artifacts, 'publish');
/** The files `SHA256SUMS` lists, in its order. */
export const sumsOrder = (artifacts: readonly Artifact[]): Artifact[] => inOrder(artifacts, 'sums');
/** The files uploaded to each destination, in the order they are sent. */
export const uploadOrder = (artifacts: readonly Artifact[]): Artifact[] => inOrder(artifacts, 'upload');

/** The files that are published: nothing may exist under their final names before the build. */
export const publishedArtifacts = (artifacts: readonly Artifact[]): Artifact[] =>
  artifacts.filter((artifact) => ARTIFACTS[artifact.role].publish !== undefined);

/** The first file of a role (the first format's, for an image); undefined when the build made none. */
export function artifactOf(artifacts: readonly Artifact[], role: ArtifactRole): Artifact | undefined {
  return artifacts.find((artifact) => artifact.role === role);
}

/** Every file of a role, in the order of the formats. */
export function artifactsOf(artifacts: readonly Artifact[], role: ArtifactRole): Artifact[] {
  return artifacts.filter((artifact) => artifact.role === role);
}

/** The first format's image: every build has one. */
export function firstImage(artifacts: readonly Artifact[]): Artifact & { format: ImageFormat } {
  const image = artifactOf(artifacts, 'image');
  if (!image?.format) throw new Error('a build without an image');
  return image as Artifact & { format: ImageFormat };
}

/** The final path of the first file of a role. */
export function pathOf(artifacts: readonly Artifact[], role: ArtifactRole): string | undefined {
  return artifactOf(artifacts, role)?.final;
}
