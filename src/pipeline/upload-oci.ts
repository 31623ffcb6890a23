import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { OciDestination } from '../config/oci-destination.js';
import type { ImageFormat } from '../config/image-spec.js';
import { redactSecrets } from '../common/credentials.js';
import { throttled } from '../common/reporter.js';
import { formatBytes } from '../common/units.js';
import type { BuildContext } from '../context/build-context.js';
import { dockerConfigCredentials } from '../net/docker-config.js';
import {
  bufferBlob,
  fileBlob,
  isTransientRegistryFailure,
  manifestOf,
  MANIFEST_TYPE,
  OciRegistry,
  piecesBlob,
  type BlobSource,
  type Descriptor,
  type Manifest,
} from '../net/oci-registry.js';
import { describeCauses, withRetries } from '../net/retry.js';
import { singleFileTar } from '../net/tar-layer.js';
import { ARTIFACTS, artifactsOf, uploadOrder, type Artifact } from './artifacts.js';

/** What a push made: each manifest's reference `registry/repository:tag@digest`, the first format's first. */
export interface OciPushResult {
  references: string[];
  /** Tries of registry calls, retries included. */
  attempts: number;
  blobsSent: number;
  blobsPresent: number;
}

/** The empty config of an artifact manifest (OCI 1.1): `{}`. */
const EMPTY_CONFIG = { mediaType: 'application/vnd.oci.empty.v1+json', data: Buffer.from('{}') };
const CHUNK_ENV = 'IMAGE_FACTORY_OCI_CHUNK_BYTES';
/** The user and group KubeVirt's virt-launcher runs qemu as: a containerDisk's file is theirs. */
const KUBEVIRT_QEMU_ID = 107;
const ANNOTATION = 'org.image-factory';
const OCI_ARCH: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64' };

/** A pushed manifest: its tag, digest and size, and the layer that must be there. */
interface Pushed {
  tag: string;
  manifest: Manifest;
  layer: BlobSource;
}

/**
 * The push to one `oci` destination: each format's image as an OCI artifact
 * (a layer of the format's media type, annotated with what the build knows),
 * with oci-containerdisk a KubeVirt containerDisk too, then the build's
 * reports as referrers of each (the artifact table's `referrer` roles, in
 * its upload order). Blobs before the manifest that names them, each call
 * retried through the one retry loop; then every tag checked on the registry.
 */
export class OciPush {
  private readonly registry: OciRegistry;
  private readonly progress: (message: string) => void;
  private result: OciPushResult = { references: [], attempts: 0, blobsSent: 0, blobsPresent: 0 };

  constructor(
    private readonly ctx: BuildContext,
    private readonly oci: OciDestination,
    private readonly artifacts: readonly Artifact[],
    private readonly label: string,
    private readonly secrets: readonly string[],
  ) {
    const chunk = Number(process.env[CHUNK_ENV]);
    this.registry = new OciRegistry({
      registry: oci.registry,
      repository: oci.repository,
      scheme: oci.scheme,
      ...(oci.ca ? { caFile: oci.ca } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(Number.isInteger(chunk) && chunk > 0 ? { chunkBytes: chunk } : {}),
    });
    this.progress = throttled(5000, (message) => ctx.reporter.progress('upload', `${label} ${message}`));
  }

  /** `registry/repository:tag` of the first format's artifact. */
  get target(): string {
    return `${this.registry.name}:${this.tag}`;
  }

  private get tag(): string {
    return this.oci.tag ?? this.ctx.spec.date;
  }

  async run(): Promise<OciPushResult> {
    await this.authenticate();
    const pushed: Pushed[] = [];
    for (const [index, image] of artifactsOf(this.artifacts, 'image').entries()) {
      pushed.push(await this.pushArtifact(image, index === 0 ? this.tag : `${this.tag}-${image.format}`));
    }
    if (this.oci.containerDisk) pushed.push(await this.pushContainerDisk());
    for (const file of uploadOrder(this.artifacts).filter((artifact) => ARTIFACTS[artifact.role].referrer)) {
      await this.attach(file, pushed);
    }
    await this.verify(pushed);
    return this.result;
  }

  /** The section's credentials, else those `docker login` saved, else none (a registry that asks fails clearly). */
  private async authenticate(): Promise<void> {
    const { username, password, registry } = this.oci;
    const credentials =
      username !== undefined && password !== undefined
        ? { username, password }
        : await dockerConfigCredentials(registry);
    if (credentials) this.registry.setCredentials(credentials);
  }

  private async pushArtifact(image: Artifact, tag: string): Promise<Pushed> {
    const format = image.format as ImageFormat;
    const layer = await fileBlob(image.final, await sizeOf(image), image.sha256);
    const sha256 = layer.digest.slice('sha256:'.length);
    const annotations = this.annotations({ format, sha256 });
    const manifest = manifestOf(
      {
        schemaVersion: 2,
        mediaType: MANIFEST_TYPE,
        artifactType: `application/vnd.image-factory.image.${format}`,
        config: await this.pushEmptyConfig(),
        layers: [await this.pushLayer(layer, `application/vnd.image-factory.disk.${format}`, basename(image.final))],
        annotations,
      },
      MANIFEST_TYPE,
    );
    return this.pushManifest(tag, manifest, layer);
  }

  /** The qcow2 (else raw) image under /disk/ in a tar layer, owned by 107:107, with a linux/<arch> image config. */
  private async pushContainerDisk(): Promise<Pushed> {
    const images = artifactsOf(this.artifacts, 'image');
    const image = images.find((file) => file.format === 'qcow2') ?? images.find((file) => file.format === 'raw');
    if (!image) throw new Error('a containerDisk holds a qcow2 or raw image, and the build made neither');
    const pieces = singleFileTar({
      folder: 'disk',
      name: basename(image.final),
      path: image.final,
      size: await sizeOf(image),
      uid: KUBEVIRT_QEMU_ID,
      gid: KUBEVIRT_QEMU_ID,
      mtime: Math.floor(Date.parse(`${this.ctx.spec.date}T00:00:00Z`) / 1000) || 0,
    });
    this.progress(`reading ${basename(image.final)} for the containerDisk layer`);
    const layer = await piecesBlob(pieces, this.ctx.signal);
    const config = bufferBlob(
      Buffer.from(
        JSON.stringify({
          architecture: OCI_ARCH[this.ctx.spec.arch] ?? this.ctx.spec.arch,
          os: 'linux',
          config: {},
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
        }),
      ),
    );
    await this.pushBlob(config, 'the containerDisk config');
    const manifest = manifestOf(
      {
        schemaVersion: 2,
        mediaType: MANIFEST_TYPE,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
        layers: [await this.pushLayer(layer, 'application/vnd.oci.image.layer.v1.tar')],
        annotations: this.annotations({ format: image.format as ImageFormat, sha256: image.sha256 }),
      },
      MANIFEST_TYPE,
    );
    return this.pushManifest(`${this.tag}-containerdisk`, manifest, layer);
  }

  /** A report as an artifact whose subject is each pushed manifest; in the tag-schema index where needed. */
  private async attach(file: Artifact, subjects: readonly Pushed[]): Promise<void> {
    const artifactType = ARTIFACTS[file.role].referrer as string;
    const blob = await fileBlob(file.final, await sizeOf(file));
    const config = await this.pushEmptyConfig();
    const layer = await this.pushLayer(blob, artifactType, basename(file.final));
    for (const subject of subjects) {
      const manifest = manifestOf(
        {
          schemaVersion: 2,
          mediaType: MANIFEST_TYPE,
          artifactType,
          config,
          layers: [layer],
          subject: {
            mediaType: subject.manifest.mediaType,
            digest: subject.manifest.digest,
            size: subject.manifest.bytes.length,
          },
          annotations: { 'org.opencontainers.image.title': basename(file.final) },
        },
        MANIFEST_TYPE,
      );
      const put = await this.retry(`pushing ${basename(file.final)}`, () =>
        this.registry.putManifest(manifest.digest, manifest),
      );
      if (put.subjectTracked) continue;
      const descriptor: Descriptor = {
        mediaType: MANIFEST_TYPE,
        digest: manifest.digest,
        size: manifest.bytes.length,
        artifactType,
        annotations: { 'org.opencontainers.image.title': basename(file.final) },
      };
      await this.retry(`listing ${basename(file.final)} as a referrer`, () =>
        this.registry.addToReferrersTag(subject.manifest.digest, descriptor),
      );
    }
  }

  /** The build's facts on each image manifest. */
  private annotations(image: { format: ImageFormat; sha256?: string }): Record<string, string> {
    const { spec } = this.ctx;
    const { GITHUB_SHA, GITHUB_SERVER_URL, GITHUB_REPOSITORY } = process.env;
    return {
      'org.opencontainers.image.title': spec.name,
      'org.opencontainers.image.version': spec.date,
      ...(GITHUB_SHA ? { 'org.opencontainers.image.revision': GITHUB_SHA } : {}),
      ...(GITHUB_SERVER_URL && GITHUB_REPOSITORY
        ? { 'org.opencontainers.image.source': `${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}` }
        : {}),
      [`${ANNOTATION}.name`]: spec.name,
      [`${ANNOTATION}.date`]: spec.date,
      [`${ANNOTATION}.arch`]: spec.arch,
      [`${ANNOTATION}.firmware`]: spec.firmware,
      [`${ANNOTATION}.format`]: image.format,
      ...(image.sha256 ? { [`${ANNOTATION}.sha256`]: image.sha256 } : {}),
    };
  }

  private async pushEmptyConfig(): Promise<Descriptor> {
    const blob = bufferBlob(EMPTY_CONFIG.data);
    await this.pushBlob(blob, 'the empty config');
    return { mediaType: EMPTY_CONFIG.mediaType, digest: blob.digest, size: blob.size };
  }

  private async pushLayer(blob: BlobSource, mediaType: string, title?: string): Promise<Descriptor> {
    await this.pushBlob(blob, title ?? 'the layer');
    return {
      mediaType,
      digest: blob.digest,
      size: blob.size,
      ...(title ? { annotations: { 'org.opencontainers.image.title': title } } : {}),
    };
  }

  private async pushBlob(blob: BlobSource, what: string): Promise<void> {
    const sent = await this.retry(`pushing ${what}`, () =>
      this.registry.pushBlob(blob, (bytes) =>
        this.progress(`${what}: ${formatBytes(bytes)} of ${formatBytes(blob.size)}`),
      ),
    );
    if (sent === 'sent') this.result.blobsSent += 1;
    else this.result.blobsPresent += 1;
  }

  /** The manifest last, once every blob it names is there: a tag never names half an image. */
  private async pushManifest(tag: string, manifest: Manifest, layer: BlobSource): Promise<Pushed> {
    await this.retry(`pushing manifest ${tag}`, () => this.registry.putManifest(tag, manifest));
    this.result.references.push(`${this.registry.name}:${tag}@${manifest.digest}`);
    return { tag, manifest, layer };
  }

  /** Each tag names the manifest pushed, and each layer is there whole: the registry's own digests and sizes. */
  private async verify(pushed: readonly Pushed[]): Promise<void> {
    for (const { tag, manifest, layer } of pushed) {
      const digest = await this.retry(`checking ${tag}`, () => this.registry.manifestDigest(tag));
      if (digest !== manifest.digest) {
        throw new Error(`${this.registry.name}:${tag} names ${digest ?? 'nothing'}, not the pushed ${manifest.digest}`);
      }
      const stored = await this.retry(`checking ${layer.digest}`, () => this.registry.hasBlob(layer.digest));
      if (stored?.size !== layer.size) {
        throw new Error(`the registry has ${layer.digest} with ${stored?.size ?? 'no'} bytes, not ${layer.size}`);
      }
    }
  }

  private retry<T>(what: string, work: () => Promise<T>): Promise<T> {
    return withRetries(work, {
      what: `${this.label} ${what}`,
      warn: (message) => this.ctx.reporter.warning(message),
      isTransient: isTransientRegistryFailure,
      describe: (error) => redactSecrets(describeCauses(error), this.secrets),
      onAttempt: () => {
        this.result.attempts += 1;
      },
      ...(this.ctx.signal ? { signal: this.ctx.signal } : {}),
    });
  }
}

async function sizeOf(artifact: Artifact): Promise<number> {
  if (artifact.size !== undefined) return artifact.size;
  return (await stat(artifact.final)).size;
}
