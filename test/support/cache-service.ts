/**
 * A stand-in for the GitHub Actions cache service — with the runner stand-in
 * (action-runner.ts), the only one the action tests use. It speaks the older
 * REST protocol (the "v1" cache service, `_apis/artifactcache`, Accept
 * `application/json;api-version=6.0-preview.1`) that @actions/cache 6 uses
 * when ACTIONS_CACHE_URL is set and ACTIONS_CACHE_SERVICE_V2 is not, as read
 * from node_modules/@actions/cache/lib/internal/cacheHttpClient.js:
 *
 *   GET   _apis/artifactcache/cache?keys=k1,k2&version=V   look up (200 entry, 204 none)
 *   POST  _apis/artifactcache/caches {key, version, cacheSize}  reserve (201 {cacheId}, 409 taken)
 *   PATCH _apis/artifactcache/caches/:id  Content-Range: bytes S-E/*   upload a chunk
 *   POST  _apis/artifactcache/caches/:id {size}   commit
 *   GET   <archiveLocation>   download the archive (here /archives/:id)
 *
 * Keys match as the service documents: for each key in order, an exact key
 * first, then the newest entry whose key starts with it; the version (a hash
 * of the paths and compression) must be equal. Every request is recorded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CacheEntry {
  id: number;
  key: string;
  version: string;
  chunks: Array<{ start: number; data: Buffer }>;
  archive?: Buffer;
  created: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
  /** Body bytes of the request (uploaded chunks, JSON). */
  sent: number;
  /** Body bytes of the answer (the archive, JSON). */
  received: number;
}

export class CacheService {
  readonly requests: RecordedRequest[] = [];
  readonly entries: CacheEntry[] = [];
  private server?: Server;
  private nextId = 1;
  url = '';

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((error: unknown) => {
        this.send(req, res, 500, { message: String(error) });
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    // @actions/cache appends `_apis/...` to the URL as it is: it must end with a slash.
    this.url = `http://127.0.0.1:${port}/`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** The environment that makes @actions/cache use this service. */
  env(): Record<string, string> {
    return { ACTIONS_CACHE_URL: this.url, ACTIONS_RUNTIME_TOKEN: 'stand-in-token' };
  }

  committed(): CacheEntry[] {
    return this.entries.filter((entry) => entry.archive !== undefined);
  }

  /** Requests since `from` (an index into requests), for asserting on one step. */
  since(from: number): RecordedRequest[] {
    return this.requests.slice(from);
  }

  /** Bytes uploaded and downloaded in the requests from index `from` on. */
  bytes(from = 0): { uploaded: number; downloaded: number } {
    const requests = this.requests.slice(from);
    return {
      uploaded: requests.reduce((sum, r) => sum + r.sent, 0),
      downloaded: requests.reduce((sum, r) => sum + r.received, 0),
    };
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, body?: unknown): void {
    const sent = requestBytes.get(req) ?? 0;
    const received =
      body === undefined ? 0 : Buffer.isBuffer(body) ? body.length : Buffer.byteLength(JSON.stringify(body));
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', status, sent, received });
    if (body === undefined) {
      res.writeHead(status).end();
      return;
    }
    if (Buffer.isBuffer(body)) {
      res.writeHead(status, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length }).end(body);
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const body = await readBody(req);
    requestBytes.set(req, body.length);
    const method = req.method ?? 'GET';
    const path = url.pathname;

    if (method === 'GET' && path === '/_apis/artifactcache/cache') {
      const keys = (url.searchParams.get('keys') ?? '').split(',').filter((key) => key !== '');
      const version = url.searchParams.get('version') ?? '';
      const entry = this.lookUp(keys, version);
      if (!entry) return this.send(req, res, 204);
      return this.send(req, res, 200, {
        scope: 'refs/heads/main',
        cacheKey: entry.key,
        cacheVersion: entry.version,
        creationTime: new Date(entry.created).toISOString(),
        archiveLocation: `${this.url}archives/${entry.id}`,
      });
    }

    if (method === 'POST' && path === '/_apis/artifactcache/caches') {
      const request = JSON.parse(body.toString('utf8')) as { key: string; version: string; cacheSize?: number };
      if (this.entries.some((entry) => entry.key === request.key && entry.version === request.version)) {
        return this.send(req, res, 409, {
          message: `Cache already exists. Key: ${request.key}, Version: ${request.version}`,
        });
      }
      const entry: CacheEntry = {
        id: this.nextId++,
        key: request.key,
        version: request.version,
        chunks: [],
        created: Date.now(),
      };
      this.entries.push(entry);
      return this.send(req, res, 201, { cacheId: entry.id });
    }

    const cacheMatch = /^\/_apis\/artifactcache\/caches\/([0-9]+)$/.exec(path);
    if (cacheMatch) {
      const entry = this.entries.find((candidate) => candidate.id === Number(cacheMatch[1]));
      if (!entry) return this.send(req, res, 404, { message: 'no such cache' });
      if (method === 'PATCH') {
        const range = /^bytes ([0-9]+)-([0-9]+)\/\*$/.exec(String(req.headers['content-range'] ?? ''));
        if (!range || Number(range[2]) - Number(range[1]) + 1 !== body.length) {
          return this.send(req, res, 400, {
            message: `bad Content-Range ${req.headers['content-range']} for ${body.length} bytes`,
          });
        }
        entry.chunks.push({ start: Number(range[1]), data: body });
        return this.send(req, res, 204);
      }
      if (method === 'POST') {
        const { size } = JSON.parse(body.toString('utf8')) as { size: number };
        const archive = Buffer.alloc(size);
        let covered = 0;
        for (const chunk of entry.chunks) {
          chunk.data.copy(archive, chunk.start);
          covered += chunk.data.length;
        }
        if (covered !== size)
          return this.send(req, res, 400, { message: `uploaded ${covered} bytes, commit says ${size}` });
        entry.archive = archive;
        entry.chunks = [];
        return this.send(req, res, 204);
      }
    }

    const archiveMatch = /^\/archives\/([0-9]+)$/.exec(path);
    if (method === 'GET' && archiveMatch) {
      const entry = this.entries.find((candidate) => candidate.id === Number(archiveMatch[1]));
      if (!entry?.archive) return this.send(req, res, 404, { message: 'no such archive' });
      return this.send(req, res, 200, entry.archive);
    }

    return this.send(req, res, 404, { message: `not part of the stand-in: ${method} ${path}` });
  }

  private lookUp(keys: string[], version: string): CacheEntry | undefined {
    const candidates = this.committed().filter((entry) => entry.version === version);
    const newest = (entries: CacheEntry[]): CacheEntry | undefined =>
      entries.sort((a, b) => b.created - a.created || b.id - a.id)[0];
    for (const key of keys) {
      const found =
        newest(candidates.filter((entry) => entry.key === key)) ??
        newest(candidates.filter((entry) => entry.key.startsWith(key)));
      if (found) return found;
    }
    return undefined;
  }
}

const requestBytes = new WeakMap<IncomingMessage, number>();

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
