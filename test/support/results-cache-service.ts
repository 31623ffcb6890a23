/**
 * The cache service that runners attached to github.com use ("v2"): a
 * stand-in for the results service's cache RPCs, and a real Azure Blob
 * Storage emulator (Microsoft's azurite) for the bytes. @actions/cache 6
 * speaks it when ACTIONS_CACHE_SERVICE_V2 and ACTIONS_RESULTS_URL are set
 * (and GITHUB_SERVER_URL is not a GHES host), as read from
 * node_modules/@actions/cache/lib/internal/shared/cacheTwirpClient.js and
 * lib/generated/results/api/v1/cache.js:
 *
 *   POST <ACTIONS_RESULTS_URL>/twirp/github.actions.results.api.v1.CacheService/<Method>
 *     Authorization: Bearer <ACTIONS_RUNTIME_TOKEN>, Content-Type: application/json,
 *     bodies in protobuf JSON with the proto field names:
 *   CreateCacheEntry {key, version} → {ok, signed_upload_url, message}
 *   FinalizeCacheEntryUpload {key, version, size_bytes} → {ok, entry_id, message}
 *   GetCacheEntryDownloadURL {key, restore_keys[], version} → {ok, signed_download_url, matched_key}
 *   errors: an HTTP status with a Twirp body {code, msg}; 500/502/503/504 are retried (5 attempts).
 *
 * The signed URLs carry a service SAS made with azurite's well-known dev
 * account key. They name `devstoreaccount1.blob.core.windows.net:PORT`, as
 * the real service's name an Azure host: @actions/cache downloads through the
 * Azure SDK (BlockBlobClient, ranged reads) only for that domain, and through
 * a plain GET otherwise. blob-host.ts resolves the name to 127.0.0.1;
 * `hostStyle: false` hands out path-style 127.0.0.1 URLs instead. PORT is a
 * relay in front of azurite that counts the bytes each way and can cut a
 * download short; azurite stores and checks everything itself (the SAS, block
 * lists, ranges).
 *
 * Lookup follows the service's documented order: an exact match of `key`,
 * then for each restore key an exact match and then the newest entry whose
 * key starts with it; the version must be equal. Only finalised entries are
 * found. Every RPC and every blob request is recorded.
 */
import {
  BlobSASPermissions,
  BlobServiceClient,
  generateBlobSASQueryParameters,
  SASProtocol,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BLOB_DOMAIN } from './blob-host.js';
import { REPO_ROOT } from './fixture.js';

/** Azurite's default account and its published key (the same in every installation). */
export const ACCOUNT = 'devstoreaccount1';
export const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONTAINER = 'actions-cache';
const SERVICE = 'github.actions.results.api.v1.CacheService';
const AZURITE = join(REPO_ROOT, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');
const BLOB_HOST_MODULE = pathToFileURL(join(REPO_ROOT, 'build', 'test', 'support', 'blob-host.js')).href;

export interface ResultsCacheEntry {
  id: number;
  key: string;
  version: string;
  blob: string;
  /** The size FinalizeCacheEntryUpload reported; undefined until then. */
  size?: number;
  created: number;
}

export interface RecordedRpc {
  method: string;
  status: number;
  request: Record<string, unknown>;
  /** The answer's `ok` (false for a lookup that found nothing). */
  ok?: boolean;
}

export interface RecordedBlobRequest {
  method: string;
  /** Path and the query's `comp`/`blockid` parts; the signature is left out. */
  path: string;
  status: number;
  /** Body bytes sent to azurite (uploads). */
  sent: number;
  /** Body bytes azurite answered with (downloads). */
  received: number;
}

export interface TwirpFailure {
  status: number;
  code: string;
  msg: string;
}

export interface ResultsCacheServiceOptions {
  /** Hand out `devstoreaccount1.blob.core.windows.net` URLs (default) or path-style 127.0.0.1 ones. */
  hostStyle?: boolean;
}

export class ResultsCacheService {
  readonly rpcs: RecordedRpc[] = [];
  readonly blobRequests: RecordedBlobRequest[] = [];
  readonly entries: ResultsCacheEntry[] = [];
  /** When set, every RPC (or only those named in `failOnly`) answers this. */
  failWith: TwirpFailure | undefined;
  failOnly: Set<string> | undefined;
  /** When set, a blob GET answers only this many body bytes and then the connection is cut. */
  cutDownloadsAfter: number | undefined;
  readonly token = 'stand-in-results-token';
  url = '';
  private readonly hostStyle: boolean;
  private nextId = 1;
  private azurite?: ChildProcess;
  private azuritePort = 0;
  private relayPort = 0;
  private rpcServer?: Server;
  private relay?: Server;
  private dataDir = '';
  private readonly credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);

  constructor(options: ResultsCacheServiceOptions = {}) {
    this.hostStyle = options.hostStyle ?? true;
  }

  async start(): Promise<string> {
    this.dataDir = mkdtempSync(join(tmpdir(), 'azurite-'));
    this.azuritePort = await startAzurite(this.dataDir, (child) => (this.azurite = child));
    this.relay = createServer((req, res) => this.forward(req, res));
    this.relayPort = await listen(this.relay);
    await this.containerClient().createIfNotExists();
    this.rpcServer = createServer((req, res) => {
      void this.handle(req, res).catch((error: unknown) => twirp(res, 500, { code: 'internal', msg: String(error) }));
    });
    const port = await listen(this.rpcServer);
    this.url = `http://127.0.0.1:${port}/`;
    return this.url;
  }

  async stop(): Promise<void> {
    await Promise.all([close(this.rpcServer), close(this.relay)]);
    const child = this.azurite;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    }
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /**
   * The environment of a github.com runner's job for @actions/cache, and
   * for a step process, the resolver of blob-host.ts (compiled into build/).
   */
  env(): Record<string, string> {
    const env: Record<string, string> = {
      ACTIONS_CACHE_SERVICE_V2: 'True',
      ACTIONS_RESULTS_URL: this.url,
      ACTIONS_RUNTIME_TOKEN: this.token,
      GITHUB_SERVER_URL: 'https://github.com',
    };
    if (this.hostStyle) env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${BLOB_HOST_MODULE}`.trim();
    return env;
  }

  finalized(): ResultsCacheEntry[] {
    return this.entries.filter((entry) => entry.size !== undefined);
  }

  /** Bytes sent to and received from blob storage in the blob requests from index `from` on. */
  bytes(from = 0): { uploaded: number; downloaded: number } {
    const requests = this.blobRequests.slice(from);
    return {
      uploaded: requests.reduce((sum, r) => sum + r.sent, 0),
      downloaded: requests.reduce((sum, r) => sum + r.received, 0),
    };
  }

  /** The entry's archive as azurite stores it. */
  async archive(entry: ResultsCacheEntry): Promise<Buffer> {
    return this.containerClient().getBlobClient(entry.blob).downloadToBuffer();
  }

  /** Replace the entry's archive in blob storage (e.g. with damaged bytes of the same length). */
  async replaceArchive(entry: ResultsCacheEntry, data: Buffer): Promise<void> {
    await this.containerClient().getBlockBlobClient(entry.blob).uploadData(data);
  }

  private containerClient() {
    return new BlobServiceClient(`http://127.0.0.1:${this.azuritePort}/${ACCOUNT}`, this.credential).getContainerClient(
      CONTAINER,
    );
  }

  private signedUrl(blob: string, permissions: string): string {
    const sas = generateBlobSASQueryParameters(
      {
        containerName: CONTAINER,
        blobName: blob,
        permissions: BlobSASPermissions.parse(permissions),
        startsOn: new Date(Date.now() - 60_000),
        expiresOn: new Date(Date.now() + 3600_000),
        protocol: SASProtocol.HttpsAndHttp,
      },
      this.credential,
    ).toString();
    const base = this.hostStyle
      ? `http://${ACCOUNT}${BLOB_DOMAIN}:${this.relayPort}`
      : `http://127.0.0.1:${this.relayPort}/${ACCOUNT}`;
    return `${base}/${CONTAINER}/${blob}?${sas}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const path = new URL(req.url ?? '/', this.url).pathname;
    const method = path.startsWith(`/twirp/${SERVICE}/`) ? path.slice(`/twirp/${SERVICE}/`.length) : path;
    let request: Record<string, unknown> = {};
    try {
      request = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      // Answered below as a malformed request.
    }
    const answer = (status: number, payload: Record<string, unknown>): void => {
      this.rpcs.push({ method, status, request, ok: typeof payload.ok === 'boolean' ? payload.ok : undefined });
      twirp(res, status, payload);
    };
    if (req.method !== 'POST' || !path.startsWith(`/twirp/${SERVICE}/`))
      return answer(404, { code: 'bad_route', msg: `no handler for ${req.method} ${path}` });
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return answer(401, { code: 'unauthenticated', msg: 'missing or wrong bearer token' });
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json'))
      return answer(415, { code: 'malformed', msg: 'not JSON' });
    if (this.failWith && (!this.failOnly || this.failOnly.has(method)))
      return answer(this.failWith.status, { code: this.failWith.code, msg: this.failWith.msg });

    const key = String(request.key ?? '');
    const version = String(request.version ?? '');
    switch (method) {
      case 'CreateCacheEntry': {
        if (this.entries.some((entry) => entry.key === key && entry.version === version)) {
          return answer(409, {
            code: 'already_exists',
            msg: 'cache entry with the same key, version, and scope already exists',
          });
        }
        const id = this.nextId++;
        const entry: ResultsCacheEntry = {
          id,
          key,
          version,
          blob: `${id}-${version.slice(0, 16)}`,
          created: Date.now(),
        };
        this.entries.push(entry);
        return answer(200, { ok: true, signed_upload_url: this.signedUrl(entry.blob, 'cw') });
      }
      case 'FinalizeCacheEntryUpload': {
        const entry = this.entries.find(
          (candidate) => candidate.key === key && candidate.version === version && candidate.size === undefined,
        );
        if (!entry)
          return answer(404, { code: 'not_found', msg: 'no cache entry is being uploaded under this key and version' });
        const size = Number(request.size_bytes);
        const stored = await this.containerClient()
          .getBlobClient(entry.blob)
          .getProperties()
          .then((properties) => properties.contentLength)
          .catch(() => undefined);
        if (stored !== size)
          return answer(200, {
            ok: false,
            message: `the blob holds ${stored ?? 'nothing'}, the upload says ${size} bytes`,
          });
        entry.size = size;
        return answer(200, { ok: true, entry_id: String(entry.id) });
      }
      case 'GetCacheEntryDownloadURL': {
        const restoreKeys = Array.isArray(request.restore_keys) ? request.restore_keys.map(String) : [];
        const entry = this.lookUp(key, restoreKeys, version);
        if (!entry) return answer(200, { ok: false });
        return answer(200, { ok: true, signed_download_url: this.signedUrl(entry.blob, 'r'), matched_key: entry.key });
      }
      default:
        return answer(404, { code: 'bad_route', msg: `no method ${method}` });
    }
  }

  private lookUp(key: string, restoreKeys: string[], version: string): ResultsCacheEntry | undefined {
    const candidates = this.finalized().filter((entry) => entry.version === version);
    const newest = (entries: ResultsCacheEntry[]): ResultsCacheEntry | undefined =>
      entries.sort((a, b) => b.created - a.created || b.id - a.id)[0];
    const exact = newest(candidates.filter((entry) => entry.key === key));
    if (exact) return exact;
    for (const restoreKey of restoreKeys) {
      const found =
        newest(candidates.filter((entry) => entry.key === restoreKey)) ??
        newest(candidates.filter((entry) => entry.key.startsWith(restoreKey)));
      if (found) return found;
    }
    return undefined;
  }

  /** Relay one blob request to azurite, counting body bytes each way. */
  private forward(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://relay');
    const shown = ['comp', 'blockid']
      .filter((name) => url.searchParams.has(name))
      .map((name) => `${name}=${url.searchParams.get(name)}`);
    const record: RecordedBlobRequest = {
      method: req.method ?? '',
      path: url.pathname + (shown.length ? `?${shown.join('&')}` : ''),
      status: 0,
      sent: 0,
      received: 0,
    };
    this.blobRequests.push(record);
    const cutAfter = req.method === 'GET' ? this.cutDownloadsAfter : undefined;
    const upstream = httpRequest(
      { host: '127.0.0.1', port: this.azuritePort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        record.status = answer.statusCode ?? 0;
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
        answer.on('data', (chunk: Buffer) => {
          if (cutAfter !== undefined && record.received + chunk.length > cutAfter) {
            const part = chunk.subarray(0, Math.max(cutAfter - record.received, 0));
            record.received += part.length;
            res.write(part, () => res.destroy());
            answer.destroy();
            return;
          }
          record.received += chunk.length;
          res.write(chunk);
        });
        answer.on('end', () => res.end());
      },
    );
    upstream.on('error', () => res.destroy());
    req.on('data', (chunk: Buffer) => {
      record.sent += chunk.length;
      upstream.write(chunk);
    });
    req.on('end', () => upstream.end());
  }
}

function twirp(res: ServerResponse, status: number, payload: Record<string, unknown>): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function close(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** azurite's blob service on a free port; resolves with the port it reports. */
function startAzurite(dataDir: string, started: (child: ChildProcess) => void): Promise<number> {
  const args = [
    AZURITE,
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    '0',
    '--location',
    dataDir,
    '--silent',
    '--skipApiVersionCheck',
    '--loose',
    '--disableTelemetry',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  started(child);
  return new Promise((resolve, reject) => {
    let output = '';
    // Only for an azurite that never starts: a busy machine (load 6 on two cores) starts it slowly.
    const timer = setTimeout(() => reject(new Error(`azurite did not start within 2 minutes: ${output}`)), 120_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /successfully listens on http:\/\/127\.0\.0\.1:([0-9]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`azurite exited (${code ?? signal}) before listening: ${output}`));
    });
  });
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
