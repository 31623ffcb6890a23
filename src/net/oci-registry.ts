import { HttpClient } from '@actions/http-client';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rootCertificates } from 'node:tls';
import { TransferError, isTransientHttpFailure } from './http-download.js';
import { AbortedError } from '../host/exec.js';

/**
 * The few calls of the OCI distribution API a push needs, over node's http(s)
 * with @actions/http-client's proxy-aware agent: the version check and its
 * authentication challenge (Basic, or a Bearer token from the realm the
 * registry names), blobs (HEAD first, then a chunked upload that resumes from
 * the offset the registry reports), manifests, and the referrers of a
 * manifest (the referrers API, or the tag-schema index `sha256-<hex>`).
 * Nothing here logs: credentials and tokens stay in this object.
 */
export class OciRegistry {
  private authorization: string | undefined;
  /** Upload sessions left by a failed try, by blob digest: the next try resumes there. */
  private readonly sessions = new Map<string, URL>();
  private readonly base: URL;
  private readonly ca: string[] | undefined;
  private credentials: RegistryCredentials | undefined;

  constructor(private readonly options: RegistryOptions) {
    this.base = new URL(`${options.scheme}://${options.registry}/`);
    this.ca = options.caFile === undefined ? undefined : trustedCas(options.caFile);
    this.credentials = options.credentials;
  }

  /** The credentials for the registry's challenge (the options', until set). */
  setCredentials(credentials: RegistryCredentials): void {
    this.credentials = credentials;
  }

  /** `registry/repository`, as a reference starts. */
  get name(): string {
    return `${this.options.registry}/${this.options.repository}`;
  }

  /** Whether the repository already holds the blob. */
  async hasBlob(digest: string): Promise<{ size: number } | undefined> {
    const response = await this.send('HEAD', this.path(`blobs/${digest}`));
    if (response.status === 404) return undefined;
    expectStatus(response, [200], `checking blob ${digest}`);
    return { size: Number(response.headers['content-length'] ?? -1) };
  }

  /**
   * Send a blob unless the repository has it. In chunks of `chunkBytes`; a
   * session a failed try left is resumed from the registry's offset.
   */
  async pushBlob(blob: BlobSource, onProgress?: (sent: number) => void): Promise<'present' | 'sent'> {
    if (await this.hasBlob(blob.digest)) return 'present';
    let { location, offset } = await this.resumeOrStart(blob.digest);
    const chunk = this.options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    while (offset < blob.size) {
      const end = Math.min(offset + chunk, blob.size);
      const response = await this.send('PATCH', location, {
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Range': `${offset}-${end - 1}`,
          'Content-Length': String(end - offset),
        },
        body: () => blob.read(offset, end),
      });
      if (response.status === 416) this.sessions.delete(blob.digest);
      expectStatus(response, [202], `uploading ${blob.digest}`);
      location = this.location(response, location);
      this.sessions.set(blob.digest, location);
      offset = end;
      onProgress?.(offset);
    }
    const done = new URL(location);
    done.searchParams.set('digest', blob.digest);
    const response = await this.send('PUT', done, { headers: { 'Content-Length': '0' }, body: () => Buffer.alloc(0) });
    this.sessions.delete(blob.digest);
    expectStatus(response, [201], `completing the upload of ${blob.digest}`);
    const stored = response.headers['docker-content-digest'];
    if (stored !== undefined && stored !== blob.digest) {
      throw new Error(`the registry stored ${blob.digest} as ${String(stored)}`);
    }
    return 'sent';
  }

  /** Put a manifest under a tag or its digest; the registry's digest must be the manifest's own. */
  async putManifest(reference: string, manifest: Manifest): Promise<PutManifestResult> {
    const response = await this.send('PUT', this.path(`manifests/${reference}`), {
      headers: { 'Content-Type': manifest.mediaType, 'Content-Length': String(manifest.bytes.length) },
      body: () => manifest.bytes,
    });
    expectStatus(response, [201], `pushing manifest ${reference}`);
    const stored = response.headers['docker-content-digest'];
    if (stored !== undefined && stored !== manifest.digest) {
      throw new Error(`the registry stored manifest ${manifest.digest} as ${String(stored)}`);
    }
    return { digest: manifest.digest, subjectTracked: response.headers['oci-subject'] !== undefined };
  }

  /** The digest the registry gives a tag or digest (HEAD, as `docker buildx imagetools` asks), or undefined. */
  async manifestDigest(reference: string): Promise<string | undefined> {
    const response = await this.send('HEAD', this.path(`manifests/${reference}`), { headers: { Accept: ACCEPT } });
    if (response.status === 404) return undefined;
    expectStatus(response, [200], `checking manifest ${reference}`);
    const digest = response.headers['docker-content-digest'];
    return typeof digest === 'string' ? digest : undefined;
  }

  /** A manifest's bytes and media type, or undefined when the repository has none of that name. */
  async getManifest(reference: string): Promise<{ mediaType: string; bytes: Buffer } | undefined> {
    const response = await this.send('GET', this.path(`manifests/${reference}`), { headers: { Accept: ACCEPT } });
    if (response.status === 404) return undefined;
    expectStatus(response, [200], `reading manifest ${reference}`);
    return { mediaType: String(response.headers['content-type'] ?? ''), bytes: response.body };
  }

  /** The referrers of a manifest through the referrers API; undefined when the registry has no such API. */
  async referrers(digest: string): Promise<Descriptor[] | undefined> {
    const response = await this.send('GET', this.path(`referrers/${digest}`), { headers: { Accept: INDEX_TYPE } });
    const type = String(response.headers['content-type'] ?? '');
    if (response.status !== 200 || !type.startsWith(INDEX_TYPE)) return undefined;
    return (JSON.parse(response.body.toString('utf8')) as { manifests?: Descriptor[] }).manifests ?? [];
  }

  /**
   * Name `referrer` a referrer of `subject` where the registry does not track
   * subjects itself: the index tagged `sha256-<hex>` (OCI 1.1's fallback)
   * gains its descriptor, once.
   */
  async addToReferrersTag(subject: string, referrer: Descriptor): Promise<void> {
    const tag = referrersTag(subject);
    const existing = await this.getManifest(tag);
    const index: ImageIndex = existing
      ? (JSON.parse(existing.bytes.toString('utf8')) as ImageIndex)
      : { schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [] };
    if (index.manifests.some((entry) => entry.digest === referrer.digest)) return;
    index.manifests.push(referrer);
    await this.putManifest(tag, manifestOf(index, INDEX_TYPE));
  }

  /** The session a failed try left, at the offset the registry has; else a new one. */
  private async resumeOrStart(digest: string): Promise<{ location: URL; offset: number }> {
    const left = this.sessions.get(digest);
    if (left) {
      const status = await this.send('GET', left);
      const range = /^0-([0-9]+)$/.exec(String(status.headers.range ?? ''));
      if (status.status === 204 && range) {
        // `0-0` is both nothing and one byte: start at 0 then, and the registry says 416 if it was one.
        const offset = Number(range[1]) === 0 ? 0 : Number(range[1]) + 1;
        return { location: this.location(status, left), offset };
      }
      this.sessions.delete(digest);
    }
    const response = await this.send('POST', this.path('blobs/uploads/'), {
      headers: { 'Content-Length': '0' },
      body: () => Buffer.alloc(0),
    });
    expectStatus(response, [202], 'starting a blob upload');
    const location = this.location(response, this.base);
    this.sessions.set(digest, location);
    return { location, offset: 0 };
  }

  private path(rest: string): URL {
    return new URL(`v2/${this.options.repository}/${rest}`, this.base);
  }

  private location(response: RegistryResponse, base: URL): URL {
    const location = response.headers.location;
    if (typeof location !== 'string') throw new Error('the registry named no upload location');
    const url = new URL(location, base);
    if (url.origin !== this.base.origin)
      throw new Error(`the registry sent the upload to another origin, ${url.origin}`);
    return url;
  }

  /** One request, authenticated: a 401 answers with its challenge, met once, and the request is sent again. */
  private async send(method: string, url: URL, request: RequestParts = {}): Promise<RegistryResponse> {
    const first = await this.exchange(method, url, request);
    if (first.status !== 401) return first;
    await this.meetChallenge(String(first.headers['www-authenticate'] ?? ''));
    const second = await this.exchange(method, url, request);
    if (second.status === 401) {
      throw new RegistryError(401, `the registry refused the credentials for ${this.name}`, second.body);
    }
    return second;
  }

  private async meetChallenge(header: string): Promise<void> {
    const challenge = parseChallenge(header);
    const credentials = this.credentials;
    if (challenge.scheme === 'basic') {
      if (!credentials) throw new RegistryError(401, `${this.options.registry} needs credentials and none were given`);
      this.authorization = basicHeader(credentials);
      return;
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) {
      throw new RegistryError(401, `${this.options.registry} asks for an unsupported authentication: ${header || '?'}`);
    }
    this.authorization = `Bearer ${await this.token(challenge.params)}`;
  }

  /** A token from the realm the challenge names, for pull and push on the repository. */
  private async token(params: Record<string, string>): Promise<string> {
    const realm = new URL(params.realm);
    if (realm.protocol !== 'https:' && realm.protocol !== this.base.protocol) {
      throw new Error(`the registry's token realm ${realm.origin} is not https`);
    }
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', `repository:${this.options.repository}:pull,push`);
    const credentials = this.credentials;
    const headers: Record<string, string> = credentials ? { Authorization: basicHeader(credentials) } : {};
    const response = await this.exchange('GET', realm, { headers });
    expectStatus(response, [200], `getting a token from ${realm.origin}${realm.pathname}`);
    const body = JSON.parse(response.body.toString('utf8')) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new Error(`the token service at ${realm.origin} sent no token`);
    return token;
  }

  /** One HTTP exchange, the whole answer read (registries' answers are small). */
  private exchange(method: string, url: URL, request: RequestParts): Promise<RegistryResponse> {
    const { signal } = this.options;
    if (signal?.aborted) return Promise.reject(new AbortedError('interrupted'));
    const module = url.protocol === 'https:' ? https : http;
    const headers: http.OutgoingHttpHeaders = { 'User-Agent': USER_AGENT, ...request.headers };
    const sameOrigin = url.origin === this.base.origin;
    if (this.authorization && sameOrigin) headers.Authorization = this.authorization;
    return new Promise((resolve, reject) => {
      const req = module.request(url, {
        method,
        headers,
        agent: new HttpClient(USER_AGENT).getAgent(url.href),
        ...(this.ca ? { ca: this.ca } : {}),
        ...(signal ? { signal } : {}),
      });
      req.setTimeout(this.options.stallTimeoutMs ?? STALL_TIMEOUT_MS, () =>
        req.destroy(
          new TransferError(`no answer from ${url.host} for ${this.options.stallTimeoutMs ?? STALL_TIMEOUT_MS} ms`),
        ),
      );
      req.once('error', (error) =>
        reject(
          signal?.aborted
            ? new AbortedError('interrupted')
            : new Error(`${method} ${url.host}: ${error.message}`, { cause: error }),
        ),
      );
      req.once('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', (error) =>
          reject(new Error(`reading from ${url.host}: ${error.message}`, { cause: error })),
        );
        response.once('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
        );
      });
      const body = request.body?.();
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else pipeline(body, req).catch((error: Error) => req.destroy(error));
    });
  }
}

export interface RegistryOptions {
  registry: string;
  repository: string;
  scheme: 'https' | 'http';
  /** A PEM file of CAs trusted besides the system's and NODE_EXTRA_CA_CERTS's. */
  caFile?: string;
  credentials?: RegistryCredentials;
  signal?: AbortSignal;
  /** Bytes per PATCH of a blob upload (default 16 MiB). */
  chunkBytes?: number;
  stallTimeoutMs?: number;
}

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** What is pushed as a blob: its digest and size, and its bytes from any offset. */
export interface BlobSource {
  digest: string;
  size: number;
  read(start: number, end: number): Readable | Buffer;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
}

/** A manifest as it is pushed: its exact bytes, their digest, and its media type. */
export interface Manifest {
  mediaType: string;
  bytes: Buffer;
  digest: string;
}

export interface PutManifestResult {
  digest: string;
  /** The registry answered OCI-Subject: it lists the referrers itself, no tag-schema index is needed. */
  subjectTracked: boolean;
}

interface RequestParts {
  headers?: http.OutgoingHttpHeaders;
  /** Made afresh for each send, so a request can be repeated after an authentication challenge. */
  body?: () => Readable | Buffer;
}

interface RegistryResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';
const ACCEPT = [
  MANIFEST_TYPE,
  INDEX_TYPE,
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');
const USER_AGENT = 'image-factory';
const DEFAULT_CHUNK_BYTES = 16 << 20;
const STALL_TIMEOUT_MS = 120_000;

/** A registry's answer other than the one expected, with its error codes. */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    message: string,
    body?: Buffer,
  ) {
    const reason = body ? registryErrors(body) : '';
    super(`${message}${reason ? `: ${reason}` : ''}`);
    this.name = 'RegistryError';
  }
}

/** Worth another try: the connection broke, or the registry said 5xx, 408, 429, or 416 (a session out of step). */
export function isTransientRegistryFailure(error: unknown): boolean {
  if (error instanceof RegistryError) return error.status >= 500 || [408, 416, 429].includes(error.status);
  return isTransientHttpFailure(error);
}

function expectStatus(response: RegistryResponse, expected: number[], what: string): void {
  if (expected.includes(response.status)) return;
  throw new RegistryError(response.status, `${what}: the registry answered HTTP ${response.status}`, response.body);
}

/** `{"errors":[{"code":"BLOB_UNKNOWN","message":"…"}]}` → `BLOB_UNKNOWN (…)`. */
function registryErrors(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    return (parsed.errors ?? [])
      .map((error) => `${error.code ?? '?'}${error.message ? ` (${error.message})` : ''}`)
      .join(', ')
      .slice(0, 300);
  } catch {
    return '';
  }
}

/** `Bearer realm="https://auth",service="registry",scope="…"` → the scheme and its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).trim().toLowerCase();
  const params: Record<string, string> = {};
  const pattern = /([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const match of (space < 0 ? '' : header.slice(space + 1)).matchAll(pattern)) {
    params[match[1].toLowerCase()] = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3];
  }
  return { scheme, params };
}

function basicHeader(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/** The system's CAs, NODE_EXTRA_CA_CERTS's and the file's: setting `ca` replaces Node's default list. */
function trustedCas(caFile: string): string[] {
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  const read = (file: string): string => readFileSync(file, 'utf8');
  return [...rootCertificates, ...(extra ? [read(extra)] : []), read(caFile)];
}

/** The tag OCI 1.1 gives the referrers index of a manifest where the registry has no referrers API. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A JSON document as a manifest: its bytes as they are pushed and their digest. */
export function manifestOf(document: object, mediaType: string): Manifest {
  const bytes = Buffer.from(JSON.stringify(document));
  return { mediaType, bytes, digest: sha256Digest(bytes) };
}

/** A blob of bytes in memory. */
export function bufferBlob(data: Buffer): BlobSource {
  return { digest: sha256Digest(data), size: data.length, read: (start, end) => data.subarray(start, end) };
}

/** A blob made of pieces: bytes in memory and ranges of files (a tar layer around an image). */
export type BlobPiece = Buffer | { path: string; size: number };

export async function piecesBlob(pieces: readonly BlobPiece[], signal?: AbortSignal): Promise<BlobSource> {
  const size = pieces.reduce((sum, piece) => sum + (Buffer.isBuffer(piece) ? piece.length : piece.size), 0);
  const hash = createHash('sha256');
  await pipeline(readPieces(pieces, 0, size), hash, ...(signal ? [{ signal }] : []));
  return { digest: `sha256:${hash.digest('hex')}`, size, read: (start, end) => readPieces(pieces, start, end) };
}

/** A file as a blob, its SHA-256 known (the build's own checksum) or read. */
export async function fileBlob(path: string, size: number, sha256?: string): Promise<BlobSource> {
  if (!sha256) return piecesBlob([{ path, size }]);
  return { digest: `sha256:${sha256}`, size, read: (start, end) => readPieces([{ path, size }], start, end) };
}

/** The bytes [start, end) of the pieces, one after the other. */
function readPieces(pieces: readonly BlobPiece[], start: number, end: number): Readable {
  const out = new PassThrough();
  void (async () => {
    let at = 0;
    for (const piece of pieces) {
      const length = Buffer.isBuffer(piece) ? piece.length : piece.size;
      const from = Math.max(start - at, 0);
      const to = Math.min(end - at, length);
      at += length;
      if (to <= from) continue;
      if (Buffer.isBuffer(piece)) out.write(piece.subarray(from, to));
      else await pipeline(createReadStream(piece.path, { start: from, end: to - 1 }), out, { end: false });
    }
    out.end();
  })().catch((error: Error) => out.destroy(error));
  return out;
}
