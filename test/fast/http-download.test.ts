import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DeadlineError,
  downloadFile,
  HttpStatusError,
  isTransientHttpFailure,
  TooLargeError,
  TransferError,
} from '../../src/net/http-download.js';

const body = Buffer.from('netboot kernel '.repeat(1000));
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let work: string;
let files = 0;
const file = (): string => join(work, `file-${(files += 1)}`);

const seen: Array<{ url: string; headers: IncomingMessage['headers'] }> = [];
/** Resolved when the server's response to that path closes: the client hung up (or it ended). */
const closed = new Map<string, Promise<void>>();
/**
 * The body the server sends until the client hangs up: without end, or a
 * byte at a time. (It stops after `guard`, so that a downloader without a
 * limit or a deadline fails these tests rather than hangs them.)
 */
function sendUntilClosed(
  res: ServerResponse,
  chunk: Buffer,
  everyMs: number,
  guard: { bytes: number; ms: number },
): void {
  let sent = 0;
  const timer = setInterval(() => {
    res.write(chunk);
    sent += chunk.length;
    if (sent >= guard.bytes) res.end();
  }, everyMs);
  const stop = setTimeout(() => res.end(), guard.ms);
  res.on('close', () => (clearInterval(timer), clearTimeout(stop)));
}
const mirror: Server = createServer((req, res) => {
  seen.push({ url: req.url ?? '', headers: req.headers });
  closed.set(req.url ?? '', new Promise((resolve) => res.on('close', resolve)));
  if (req.url === '/vmlinuz') {
    if (req.headers['if-none-match'] === '"v1"') return void res.writeHead(304).end();
    return void res
      .writeHead(200, { ETag: '"v1"', 'Last-Modified': 'Thu, 01 Jan 2026 00:00:00 GMT', 'Content-Length': body.length })
      .end(body);
  }
  if (req.url === '/moved') return void res.writeHead(302, { Location: '/vmlinuz' }).end();
  if (req.url === '/elsewhere')
    return void res.writeHead(307, { Location: `http://localhost:${port(mirror)}/vmlinuz` }).end();
  if (req.url === '/cut-once') {
    const first = seen.filter((request) => request.url === '/cut-once').length === 1;
    res.writeHead(200, { 'Content-Length': body.length });
    if (first) return void res.write(body.subarray(0, 1000), () => req.socket.destroy());
    return void res.end(body);
  }
  if (req.url === '/announced-large') return void res.writeHead(200, { 'Content-Length': 1 << 30 }).end();
  if (req.url === '/endless') {
    res.writeHead(200);
    return sendUntilClosed(res, Buffer.alloc(64 * 1024, 'y'), 1, { bytes: 64 << 20, ms: 30_000 });
  }
  if (req.url === '/drip') {
    res.writeHead(200);
    return sendUntilClosed(res, Buffer.from('.'), 10, { bytes: Infinity, ms: 30_000 });
  }
  if (req.url === '/stall') {
    res.writeHead(200, { 'Content-Length': 100 });
    return void res.write('x');
  }
  res.writeHead(404, 'Not Found').end();
});

/** An HTTP proxy that only tunnels (CONNECT), as @actions/http-client's agent uses it; every host is the mirror. */
const tunnels: string[] = [];
const proxy: Server = createServer((_, res) => res.writeHead(405).end());
proxy.on('connect', (req: IncomingMessage, socket) => {
  tunnels.push(req.url ?? '');
  const upstream = connect(port(mirror), '127.0.0.1', () => {
    socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
});

const port = (server: Server): number => (server.address() as AddressInfo).port;
const listen = (server: Server): Promise<void> => new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const close = (server: Server): Promise<void> => {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
};

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'http-download-test-'));
  await listen(mirror);
  await listen(proxy);
});
after(async () => {
  await close(mirror);
  await close(proxy);
  await rm(work, { recursive: true, force: true });
});

function withProxyEnv<T>(env: Record<string, string | undefined>, work: () => Promise<T>): Promise<T> {
  const names = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy'];
  const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
  for (const name of names) delete process.env[name];
  Object.assign(process.env, env);
  return work().finally(() => {
    for (const name of names) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });
}

describe('downloadFile', () => {
  test('writes the body, hashes it, returns the validators; a conditional GET gets 304', async () => {
    const path = file();
    const progress: Array<[number, number | undefined]> = [];
    const result = await downloadFile(`http://127.0.0.1:${port(mirror)}/vmlinuz`, path, {
      onProgress: (bytes, total) => progress.push([bytes, total]),
    });
    assert.deepEqual(result, {
      status: 200,
      bytes: body.length,
      sha256: sha256(body),
      etag: '"v1"',
      lastModified: 'Thu, 01 Jan 2026 00:00:00 GMT',
    });
    assert.deepEqual(await readFile(path), body);
    assert.deepEqual(progress[0], [0, body.length]);
    assert.deepEqual(progress.at(-1), [body.length, body.length]);
    assert.equal(seen.at(-1)?.headers['user-agent'], 'image-factory');
    assert.deepEqual(
      await downloadFile(`http://127.0.0.1:${port(mirror)}/vmlinuz`, file(), { headers: { 'If-None-Match': '"v1"' } }),
      { status: 304 },
    );
  });

  test('follows redirects; credentials go to the same origin only', async () => {
    const authorization = `Basic ${Buffer.from('u:p@ss').toString('base64')}`;
    await downloadFile(`http://u:p%40ss@127.0.0.1:${port(mirror)}/moved`, file());
    assert.deepEqual(
      seen.slice(-2).map((request) => [request.url, request.headers.authorization]),
      [
        ['/moved', authorization],
        ['/vmlinuz', authorization],
      ],
    );
    await downloadFile(`http://u:p%40ss@127.0.0.1:${port(mirror)}/elsewhere`, file());
    assert.deepEqual(
      seen.slice(-2).map((request) => [request.url, request.headers.authorization]),
      [
        ['/elsewhere', authorization],
        ['/vmlinuz', undefined],
      ],
    );
  });

  test('goes through HTTP_PROXY, unless NO_PROXY names the host', async () => {
    // mirror.invalid resolves nowhere: only the proxy can reach it.
    const uri = `http://mirror.invalid:${port(mirror)}/vmlinuz`;
    const path = file();
    await withProxyEnv({ HTTP_PROXY: `http://127.0.0.1:${port(proxy)}` }, () => downloadFile(uri, path));
    assert.deepEqual(await readFile(path), body);
    assert.deepEqual(tunnels, [`mirror.invalid:${port(mirror)}`]);
    await assert.rejects(
      withProxyEnv({ HTTP_PROXY: `http://127.0.0.1:${port(proxy)}`, NO_PROXY: 'mirror.invalid' }, () =>
        downloadFile(uri, file()),
      ),
      (error: NodeJS.ErrnoException) => error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN',
    );
    assert.equal(tunnels.length, 1, 'NO_PROXY: not through the proxy');
  });

  test('a 404 is permanent, a stall is transient, an abort ends it at once', async () => {
    const notFound = await downloadFile(`http://127.0.0.1:${port(mirror)}/nope`, file()).catch(
      (error: unknown) => error,
    );
    assert.ok(notFound instanceof HttpStatusError && notFound.status === 404, String(notFound));
    assert.equal(isTransientHttpFailure(notFound), false);
    assert.equal(isTransientHttpFailure(new HttpStatusError(503, '')), true);

    const stalled = await downloadFile(`http://127.0.0.1:${port(mirror)}/stall`, file(), { stallTimeoutMs: 200 }).catch(
      (error: unknown) => error,
    );
    assert.ok(stalled instanceof TransferError, String(stalled));
    assert.match(stalled.message, /no data for/);
    assert.equal(isTransientHttpFailure(stalled), true);

    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(
      downloadFile(`http://127.0.0.1:${port(mirror)}/stall`, file(), { signal: controller.signal }),
      /interrupted/,
    );
    assert.ok(Date.now() - started < 5000, 'the abort did not wait for the stall timeout');
  });

  test('a connection cut short leaves no file: the next try into the same path starts clean', async () => {
    const path = file();
    const cut = await downloadFile(`http://127.0.0.1:${port(mirror)}/cut-once`, path).catch((error: unknown) => error);
    assert.ok(cut instanceof TransferError, String(cut));
    assert.match(cut.message, /^the connection closed after \d+ B of 14\.6 KiB$/);
    assert.equal(isTransientHttpFailure(cut), true);
    await assert.rejects(access(path), { code: 'ENOENT' }, 'the partial body was removed');
    const result = await downloadFile(`http://127.0.0.1:${port(mirror)}/cut-once`, path);
    assert.equal(result.status === 200 && result.sha256, sha256(body));
    assert.deepEqual(await readFile(path), body);
  });

  test('a Content-Length over the limit is refused before anything is written, and not retried', async () => {
    const path = file();
    const refused = await downloadFile(`http://127.0.0.1:${port(mirror)}/announced-large`, path, {
      maxBytes: 1 << 20,
    }).catch((error: unknown) => error);
    assert.ok(refused instanceof TooLargeError, String(refused));
    assert.match(refused.message, /announced 1\.0 GiB \(Content-Length 1073741824\), more than the 1\.0 MiB accepted/);
    assert.equal(isTransientHttpFailure(refused), false);
    await assert.rejects(access(path), { code: 'ENOENT' });
  });

  test('an endless body is stopped once past the limit, the connection closed and the partial file removed', async () => {
    const path = file();
    const refused = await downloadFile(`http://127.0.0.1:${port(mirror)}/endless`, path, {
      maxBytes: 1 << 20,
    }).catch((error: unknown) => error);
    assert.ok(refused instanceof TooLargeError, String(refused));
    assert.match(refused.message, /more than 1\.0 MiB arrived/);
    await assert.rejects(access(path), { code: 'ENOENT' });
    await closed.get('/endless');
  });

  test('a server that sends a byte at a time is given up at the deadline, though it never stalls', async () => {
    const path = file();
    const slow = await downloadFile(`http://127.0.0.1:${port(mirror)}/drip`, path, { deadlineMs: 300 }).catch(
      (error: unknown) => error,
    );
    assert.ok(slow instanceof DeadlineError, String(slow));
    assert.match(slow.message, /not finished after 0\.3 s, the longest this download may take \(\d+ B had arrived\)/);
    assert.equal(isTransientHttpFailure(slow), false);
    await assert.rejects(access(path), { code: 'ENOENT' });
    await closed.get('/drip');
  });
});
