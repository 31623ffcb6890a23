import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ImageFormat, ImageSpec, UploadDestination } from '../config/image-spec.js';
import type { GlanceSettings } from '../config/glance-destination.js';
import type { BuildContext } from '../context/build-context.js';
import { GlanceClient, GlanceError, isTransientGlanceFailure, type GlanceImage } from '../net/glance.js';
import { credentialsFromCloud, credentialsFromEnv, keystoneSecrets, keystoneToken } from '../net/keystone.js';
import { withRetries } from '../net/retry.js';
import { formatBytes } from '../common/units.js';

/** Why a Glance upload failed, in words (a destination's failure, not the build's crash). */
export class GlanceUploadError extends Error {}

/** What the Glance upload needs of the build beyond the destination: the first image and what it holds. */
export interface GlanceImageFile {
  path: string;
  format: ImageFormat;
  /** The installed system's os-release (ID, VERSION_ID), from the scrub's inventory. */
  osRelease?: Record<string, string>;
  /** The SHA-256 the build published for it: the bytes sent must have it. */
  sha256?: string;
}

/** os-release IDs whose Glance `os_distro` (the values Nova and Glance document) differs. */
const OS_DISTRO: Record<string, string> = { 'opensuse-leap': 'opensuse', 'opensuse-tumbleweed': 'opensuse' };

/**
 * The properties an image needs to boot as it was built (Glance's "useful
 * image properties"): its architecture, distribution and version, UEFI and
 * the q35 machine it implies on x86_64 (virt on aarch64), Secure Boot; then
 * the destination's glance-properties over them.
 */
export function imageProperties(
  spec: ImageSpec,
  file: GlanceImageFile,
  settings: GlanceSettings,
): Record<string, string> {
  const properties: Record<string, string> = { architecture: spec.arch };
  const id = file.osRelease?.ID;
  if (id) properties.os_distro = OS_DISTRO[id] ?? id;
  const version = file.osRelease?.VERSION_ID;
  if (version) properties.os_version = version;
  const uefi = spec.firmware !== 'bios';
  if (uefi) properties.hw_firmware_type = 'uefi';
  if (spec.arch === 'aarch64') properties.hw_machine_type = 'virt';
  else if (uefi) properties.hw_machine_type = 'q35';
  if (spec.firmware === 'uefi-secure') properties.os_secure_boot = 'required';
  return { ...properties, ...settings.properties };
}

/** The image record Glance creates: name, formats, visibility, tags, properties. */
export function imageRecord(
  spec: ImageSpec,
  file: GlanceImageFile,
  settings: GlanceSettings,
  name: string,
): Record<string, unknown> {
  return {
    ...imageProperties(spec, file, settings),
    name,
    disk_format: file.format,
    container_format: 'bare',
    visibility: settings.visibility,
    tags: settings.tags,
  };
}

/** The digests Glance reports, computed from the bytes as they are sent. */
interface SentDigests {
  sha256: string;
  sha512: string;
  md5: string;
  size: number;
}

/**
 * Upload the first image to Glance: create the record, send the data,
 * wait until Glance says `active`, compare its size, SHA-512 (os_hash_value)
 * and MD5 (checksum) with the bytes sent, and the bytes sent with the
 * published SHA-256 (hashed as they go, the file read once); then, with glance-replace, delete
 * the older images of the name. An image of the name without glance-replace
 * fails before anything is created; a failed upload deletes its own record.
 * Returns the new image's ID. `secrets` gains the Keystone token.
 */
export async function uploadToGlance(
  ctx: BuildContext,
  destination: UploadDestination,
  file: GlanceImageFile,
  secrets: string[],
  onAttempt: () => void,
): Promise<string> {
  const settings = destination.glance as GlanceSettings;
  const label = `[${destination.name}]`;
  const name = settings.name ?? ctx.spec.name;
  const { client, owner } = await connect(ctx, destination, secrets);
  const retrying = {
    warn: (message: string) => ctx.reporter.warning(message),
    isTransient: isTransientGlanceFailure,
    describe: (error: unknown) => (error as Error).message,
    signal: ctx.signal,
  };
  const existing = await withRetries(() => client.imagesNamed(name, owner), {
    ...retrying,
    what: `${label} listing the images named ${name}`,
  });
  if (existing.length && !settings.replace) {
    throw new GlanceUploadError(
      `an image named ${name} already exists on ${destination.target} (${existing.map((image) => image.id).join(', ')}); ` +
        `set glance-replace = yes in [${destination.name}] to replace it once the new one is active, or name it with glance-name.`,
    );
  }
  const created = await client.createImage(imageRecord(ctx.spec, file, settings, name));
  ctx.reporter.info(`${label} created image ${created.id} (${name}, ${file.format}) on ${destination.target}`);
  try {
    const sent = await withRetries(() => sendData(ctx, client, created.id, file.path, label), {
      ...retrying,
      what: `${label} uploading to Glance`,
      onAttempt,
    });
    if (file.sha256 !== undefined && sent.sha256 !== file.sha256)
      throw new GlanceUploadError(
        `the bytes sent to Glance have SHA-256 ${sent.sha256}, not the published ${file.sha256}: ` +
          `${file.path} changed after its checksum was written`,
      );
    verifyStored(await waitUntilActive(client, created.id, ctx.signal), sent);
  } catch (error) {
    await client.deleteImage(created.id).catch(() => undefined);
    throw error;
  }
  for (const old of existing) {
    await client.deleteImage(old.id);
    ctx.reporter.info(`${label} replaced image ${old.id} (${name}) with ${created.id}`);
  }
  return created.id;
}

/**
 * A Glance client with a Keystone token from the OS_* variables, or none for a service without Keystone;
 * the owner of the images it creates (its project; null without Keystone).
 */
async function connect(
  ctx: BuildContext,
  destination: UploadDestination,
  secrets: string[],
): Promise<{ client: GlanceClient; owner: string | null }> {
  const cloud = destination.glance?.cloud;
  let credentials;
  try {
    credentials = cloud ? credentialsFromCloud(cloud) : credentialsFromEnv();
  } catch (error) {
    throw new GlanceUploadError((error as Error).message);
  }
  secrets.push(...keystoneSecrets(credentials));
  if (!credentials) return { client: new GlanceClient(destination.target), owner: null };
  ctx.reporter.info(`[${destination.name}] authenticating at ${credentials.authUrl} (${credentials.method})`);
  const { token, projectId } = await keystoneToken(credentials).catch((error: Error) => {
    throw new GlanceUploadError(error.message);
  });
  secrets.push(token);
  return { client: new GlanceClient(destination.target, token), owner: projectId ?? null };
}

/** PUT the file, hashing the bytes as they go; progress every 5 s. */
async function sendData(
  ctx: BuildContext,
  client: GlanceClient,
  id: string,
  path: string,
  label: string,
): Promise<SentDigests> {
  const { size } = await stat(path);
  const sha256 = createHash('sha256');
  const sha512 = createHash('sha512');
  const md5 = createHash('md5');
  let sent = 0;
  let shown = Date.now();
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sha256.update(chunk);
      sha512.update(chunk);
      md5.update(chunk);
      sent += chunk.length;
      if (Date.now() - shown > 5000) {
        shown = Date.now();
        ctx.reporter.progress('upload', `${label} ${formatBytes(sent)} of ${formatBytes(size)}`);
      }
      done(null, chunk);
    },
  });
  await client.uploadData(id, createReadStream(path).pipe(hashing), size);
  return { sha256: sha256.digest('hex'), sha512: sha512.digest('hex'), md5: md5.digest('hex'), size: sent };
}

/** The image once Glance has it: `active`; a failure when Glance dropped it (killed, deleted). */
async function waitUntilActive(client: GlanceClient, id: string, signal?: AbortSignal): Promise<GlanceImage> {
  for (let wait = 100; ; wait = Math.min(wait * 2, 5000)) {
    const image = await client.image(id);
    if (image.status === 'active') return image;
    if (!['queued', 'saving', 'importing', 'uploading'].includes(image.status)) {
      throw new GlanceUploadError(`Glance set image ${id} to ${image.status} after its upload`);
    }
    await sleep(wait, undefined, signal ? { signal } : {});
  }
}

/** Glance's size and digests are those of the bytes sent. */
function verifyStored(image: GlanceImage, sent: SentDigests): void {
  const differ: string[] = [];
  if (image.size !== sent.size) differ.push(`size ${image.size} (sent ${sent.size})`);
  if (image.os_hash_algo === 'sha512' && image.os_hash_value !== sent.sha512) differ.push('SHA-512 (os_hash_value)');
  if (image.checksum !== null && image.checksum !== sent.md5) differ.push('MD5 (checksum)');
  if (image.os_hash_algo !== 'sha512' && image.checksum === null) differ.push('no checksum reported');
  if (differ.length) {
    throw new GlanceUploadError(`Glance's image ${image.id} differs from the file sent: ${differ.join(', ')}`);
  }
}

export { GlanceError };
