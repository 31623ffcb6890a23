import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSource, type ImageSpec, type InstallerSource } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import { AbortedError } from '../../src/host/exec.js';
import type { BuildContext } from '../../src/context/build-context.js';
import { TransferError } from '../../src/net/http-download.js';
import { FetchError, fetchInstaller } from '../../src/pipeline/fetch.js';
import { RecordingReporter, testContext, testSpec } from '../support/build-context.js';
import { startRsyncDaemon } from '../support/rsync-daemon.js';

process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '20';

function source(uri: string, sha256?: string): InstallerSource {
  const parsed = parseSource(uri, (message) => new UsageError(message));
  return sha256 === undefined ? parsed : { ...parsed, sha256 };
}

function context(
  cacheDir: string,
  installer: ImageSpec['installer'],
  options: { recording?: true; signal?: AbortSignal } = {},
): { ctx: BuildContext; reporter: RecordingReporter } {
  return testContext(testSpec({ name: 'test-image', outputDir: cacheDir, cacheDir, installer }), options);
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'fetch-test-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function folder(name: string): Promise<string> {
  const path = join(work, name);
  await mkdir(path, { recursive: true });
  return path;
}

/** What a user would find in the cache folder besides the finished files. */
async function partials(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.includes('.partial-') || /^\..*\.[A-Za-z0-9]{6}$/.test(name));
}

describe('fetching from file: and plain paths', () => {
  test('copies into a new cache folder (0755, parents made), keeps the time, and reuses the copy while size and time match', async () => {
    const src = await folder('local-src');
    await writeFile(join(src, 'vmlinuz'), 'kernel v1');
    await writeFile(join(src, 'initrd.gz'), 'initrd v1', { mode: 0o600 });
    const cacheDir = join(work, 'local-cache', 'deeper', 'test-image');
    const installer = {
      kind: 'netboot' as const,
      linux: source(`file://${join(src, 'vmlinuz')}`),
      initrd: source(join(src, 'initrd.gz')),
    };

    const first = context(cacheDir, installer);
    const fetched = await fetchInstaller(first.ctx);
    assert.deepEqual(fetched, { dir: cacheDir, files: { linux: 'vmlinuz', initrd: 'initrd.gz' }, downloaded: true });
    assert.equal(await readFile(join(cacheDir, 'vmlinuz'), 'utf8'), 'kernel v1');
    assert.equal(await readFile(join(cacheDir, 'initrd.gz'), 'utf8'), 'initrd v1');
    assert.equal((await stat(cacheDir)).mode & 0o777, 0o755);
    assert.equal((await stat(join(work, 'local-cache'))).mode & 0o777, 0o755);
    assert.equal((await stat(join(cacheDir, 'initrd.gz'))).mode & 0o777, 0o644, 'the qemu user must read the initrd');
    const timeDifference = (await stat(join(cacheDir, 'vmlinuz'))).mtimeMs - (await stat(join(src, 'vmlinuz'))).mtimeMs;
    assert.ok(Math.abs(timeDifference) < 0.01, `the copy keeps the original's time (off by ${timeDifference} ms)`);
    assert.match(first.reporter.text(), /linux: copied file:\/\/.*vmlinuz .*\(9 B/);
    assert.deepEqual(first.ctx.cleanup.pending(), []);

    const second = context(cacheDir, installer);
    assert.equal((await fetchInstaller(second.ctx)).downloaded, false);
    assert.match(second.reporter.text(), /linux: vmlinuz taken from cache \(9 B/);
    assert.match(second.reporter.text(), /initrd: initrd.gz taken from cache/);

    await writeFile(join(src, 'vmlinuz'), 'kernel v2');
    await utimes(join(src, 'vmlinuz'), new Date(), new Date(Date.now() + 5000));
    const third = context(cacheDir, installer);
    assert.equal((await fetchInstaller(third.ctx)).downloaded, true);
    assert.equal(await readFile(join(cacheDir, 'vmlinuz'), 'utf8'), 'kernel v2');
    assert.match(third.reporter.text(), /initrd: initrd.gz taken from cache/);
    assert.deepEqual(await partials(cacheDir), []);
  });

  test('a planted file with the right size and time is not taken from cache, nor a symlink, nor a folder others can write', async () => {
    const src = await folder('trust-src');
    await writeFile(join(src, 'vmlinuz'), 'kernel v1');
    await writeFile(join(src, 'initrd'), 'initrd v1');
    const cacheDir = await folder('trust-cache');
    const installer = {
      kind: 'netboot' as const,
      linux: source(join(src, 'vmlinuz')),
      initrd: source(join(src, 'initrd')),
    };
    await fetchInstaller(context(cacheDir, installer).ctx);
    const original = await stat(join(src, 'vmlinuz'));
    // Same size, same time, other content: the recorded SHA-256 of our copy tells it apart.
    await writeFile(join(cacheDir, 'vmlinuz'), 'evil   v1');
    await utimes(join(cacheDir, 'vmlinuz'), original.atime, original.mtime);
    // A symlink in place of a cached file, to a host file of the right size and time: replaced, never followed.
    const hostFile = join(work, 'trust-host-file');
    await writeFile(hostFile, 'host file');
    const initrd = await stat(join(src, 'initrd'));
    await utimes(hostFile, initrd.atime, initrd.mtime);
    await rm(join(cacheDir, 'initrd'), { force: true });
    await symlink(hostFile, join(cacheDir, 'initrd'));
    const again = context(cacheDir, installer);
    assert.equal((await fetchInstaller(again.ctx)).downloaded, true);
    assert.match(again.reporter.text(), /has the size and time of .* but is not our copy: copying again/);
    assert.equal(await readFile(join(cacheDir, 'vmlinuz'), 'utf8'), 'kernel v1');
    assert.equal(await readFile(join(cacheDir, 'initrd'), 'utf8'), 'initrd v1');
    assert.equal(await readFile(hostFile, 'utf8'), 'host file');

    await chmod(cacheDir, 0o777);
    await assert.rejects(
      fetchInstaller(context(cacheDir, installer).ctx),
      /The cache folder .*trust-cache can be written by others \(mode 777\): its files would be used as the installer/,
    );
    await chmod(cacheDir, 0o755);
    const linked = join(work, 'trust-linked-cache');
    await symlink(cacheDir, linked);
    await assert.rejects(fetchInstaller(context(linked, installer).ctx), /The cache folder .* is a symlink/);
  });

  test('prefixes the key when kernel and initrd have the same file name', async () => {
    const a = await folder('same-name/a');
    const b = await folder('same-name/b');
    await writeFile(join(a, 'boot.img'), 'kernel');
    await writeFile(join(b, 'boot.img'), 'initrd');
    const cacheDir = join(work, 'same-name-cache');
    const { ctx } = context(cacheDir, {
      kind: 'netboot',
      linux: source(join(a, 'boot.img')),
      initrd: source(join(b, 'boot.img')),
    });
    const fetched = await fetchInstaller(ctx);
    assert.deepEqual(fetched.files, { linux: 'linux-boot.img', initrd: 'initrd-boot.img' });
    assert.equal(await readFile(join(cacheDir, 'linux-boot.img'), 'utf8'), 'kernel');
    assert.equal(await readFile(join(cacheDir, 'initrd-boot.img'), 'utf8'), 'initrd');
  });

  test('a SHA-256 mismatch names both digests and leaves nothing in the cache', async () => {
    const src = await folder('sha-src');
    await writeFile(join(src, 'installer.iso'), 'not the right iso');
    const cacheDir = join(work, 'sha-cache');
    const wrong = 'a'.repeat(64);
    const { ctx } = context(cacheDir, { kind: 'image', image: source(join(src, 'installer.iso'), wrong) });
    const error = await fetchInstaller(ctx).then(
      () => assert.fail('expected a FetchError'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof FetchError);
    assert.equal(error.key, 'image');
    assert.match(error.message, new RegExp(`expected ${wrong}, got ${sha256('not the right iso')}`));
    assert.match(error.message, /installer\.iso/);
    assert.deepEqual(await readdir(cacheDir), []);
  });

  test('a missing source file is a FetchError naming the key and the path', async () => {
    const cacheDir = join(work, 'missing-cache');
    const { ctx } = context(cacheDir, {
      kind: 'netboot',
      linux: source(join(work, 'nope', 'vmlinuz')),
      initrd: source(join(work, 'nope', 'initrd')),
    });
    await assert.rejects(fetchInstaller(ctx), (error: unknown) => {
      assert.ok(error instanceof FetchError);
      assert.match(error.message, /installer linux from .*nope\/vmlinuz: .*does not exist/);
      return true;
    });
  });

  test('removes partial downloads older than a day and keeps recent ones', async () => {
    const src = await folder('stale-src');
    await writeFile(join(src, 'vmlinuz'), 'k');
    await writeFile(join(src, 'initrd'), 'i');
    const cacheDir = await folder('stale-cache');
    const old = join(cacheDir, 'vmlinuz.partial-0123456789ab');
    const fresh = join(cacheDir, 'initrd.partial-ba9876543210');
    await writeFile(old, 'half');
    await writeFile(fresh, 'half');
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await utimes(old, twoDaysAgo, twoDaysAgo);
    const { ctx, reporter } = context(cacheDir, {
      kind: 'netboot',
      linux: source(join(src, 'vmlinuz')),
      initrd: source(join(src, 'initrd')),
    });
    await fetchInstaller(ctx);
    assert.deepEqual((await readdir(cacheDir)).sort(), [
      'initrd',
      'initrd.copy.json',
      'initrd.partial-ba9876543210',
      'vmlinuz',
      'vmlinuz.copy.json',
    ]);
    assert.match(reporter.text(), /Removed the stale partial download .*vmlinuz\.partial-0123456789ab/);
  });
});

describe('fetching over HTTP', () => {
  const kernel = randomBytes(300_000);
  let kernelEtag = '"v1"';
  let current = kernel;
  const requests: Array<{ url: string; headers: IncomingMessage['headers'] }> = [];
  let flakyDrops = 0;
  let midwayReached: () => void = () => {};
  const midway = new Promise<void>((resolve) => (midwayReached = resolve));
  let base = '';
  let baseWithPassword = '';

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    const path = req.url ?? '';
    if (path === '/dists/vmlinuz' || path === '/auth/vmlinuz') {
      if (
        path.startsWith('/auth/') &&
        req.headers.authorization !== `Basic ${Buffer.from('mirror:pa55-w0rd').toString('base64')}`
      ) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"' }).end();
        return;
      }
      if (req.headers['if-none-match'] === kernelEtag) {
        res.writeHead(304, { ETag: kernelEtag }).end();
        return;
      }
      res.writeHead(200, {
        ETag: kernelEtag,
        'Last-Modified': 'Thu, 01 Jan 2026 00:00:00 GMT',
        'Content-Length': current.length,
      });
      res.end(current);
      return;
    }
    if (path === '/flaky/initrd.gz') {
      if (flakyDrops < 2) {
        flakyDrops += 1;
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'Content-Length': 6 }).end('initrd');
      return;
    }
    if (path === '/broken/initrd.gz') {
      res.writeHead(503, 'Service Unavailable').end();
      return;
    }
    if (path === '/slow/netboot.iso') {
      res.writeHead(200, { 'Content-Length': 50 << 20 });
      res.write(randomBytes(1 << 20), () => midwayReached());
      // …and never more: the test interrupts the download here.
      return;
    }
    res.writeHead(404, 'Not Found').end();
  });

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    base = `http://127.0.0.1:${port}`;
    baseWithPassword = `http://mirror:pa55-w0rd@127.0.0.1:${port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('downloads once, then revalidates with the ETag (304) without downloading again, and fetches a new version', async () => {
    const cacheDir = join(work, 'http-cache');
    const installer = {
      kind: 'netboot' as const,
      linux: source(`${base}/dists/vmlinuz`),
      initrd: source(`${base}/flaky/initrd.gz`),
    };
    flakyDrops = 2;

    const first = context(cacheDir, installer);
    assert.equal((await fetchInstaller(first.ctx)).downloaded, true);
    assert.deepEqual(await readFile(join(cacheDir, 'vmlinuz')), kernel);
    assert.match(
      first.reporter.text(),
      /linux: downloaded http:\/\/127\.0\.0\.1:\d+\/dists\/vmlinuz to .*vmlinuz \(293\.0 KiB/,
    );
    assert.match(first.reporter.text(), /progress fetch: linux: downloading/);
    const sidecar = JSON.parse(await readFile(join(cacheDir, 'vmlinuz.http.json'), 'utf8')) as { etag: string };
    assert.equal(sidecar.etag, '"v1"');
    const inode = (await stat(join(cacheDir, 'vmlinuz'))).ino;

    const before304 = requests.length;
    const second = context(cacheDir, installer);
    assert.equal((await fetchInstaller(second.ctx)).downloaded, true, 'the initrd has no validators: downloaded again');
    const conditional = requests.slice(before304).find((r) => r.url === '/dists/vmlinuz');
    assert.equal(conditional?.headers['if-none-match'], '"v1"');
    assert.equal(conditional?.headers['if-modified-since'], 'Thu, 01 Jan 2026 00:00:00 GMT');
    assert.match(
      second.reporter.text(),
      /linux: vmlinuz revalidated, unchanged on the server \(HTTP 304; 293\.0 KiB from cache\)/,
    );
    assert.equal((await stat(join(cacheDir, 'vmlinuz'))).ino, inode, 'the cached kernel was not rewritten');

    current = randomBytes(1000);
    kernelEtag = '"v2"';
    const third = context(cacheDir, installer);
    await fetchInstaller(third.ctx);
    assert.deepEqual(await readFile(join(cacheDir, 'vmlinuz')), current);
    assert.match(third.reporter.text(), /linux: downloaded .*\(1000 B/);
    assert.deepEqual(await partials(cacheDir), []);
    current = kernel;
    kernelEtag = '"v1"';
  });

  test('a configured SHA-256 is verified, and a cached file that matches it is used without asking the server', async () => {
    const cacheDir = join(work, 'http-sha-cache');
    const installer = { kind: 'image' as const, image: source(`${base}/dists/vmlinuz`, sha256(kernel)) };
    await fetchInstaller(context(cacheDir, installer).ctx);
    assert.deepEqual(await readFile(join(cacheDir, 'vmlinuz')), kernel);

    const count = requests.length;
    const again = context(cacheDir, installer);
    assert.equal((await fetchInstaller(again.ctx)).downloaded, false);
    assert.equal(requests.length, count, 'no request was made');
    assert.match(again.reporter.text(), /image: vmlinuz taken from cache \(293\.0 KiB, SHA-256 matches\)/);
  });

  test('a download that does not match the SHA-256 is deleted and the error shows both digests', async () => {
    const cacheDir = join(work, 'http-badsha-cache');
    const wrong = '0'.repeat(64);
    const { ctx } = context(cacheDir, { kind: 'image', image: source(`${base}/dists/vmlinuz`, wrong) });
    await assert.rejects(fetchInstaller(ctx), (error: unknown) => {
      assert.ok(error instanceof FetchError);
      assert.match(
        error.message,
        new RegExp(`image from ${base}/dists/vmlinuz: SHA-256 mismatch: expected ${wrong}, got ${sha256(kernel)}`),
      );
      return true;
    });
    assert.deepEqual(await readdir(cacheDir), []);
  });

  test('404 fails at once with the URL (password hidden) and is not retried', async () => {
    const cacheDir = join(work, 'http-404-cache');
    const count = requests.length;
    const { ctx, reporter } = context(cacheDir, {
      kind: 'netboot',
      linux: source(`${baseWithPassword}/nope/vmlinuz`),
      initrd: source(`${base}/dists/vmlinuz`),
    });
    const error = await fetchInstaller(ctx).then(
      () => assert.fail('expected a FetchError'),
      (e: unknown) => e as Error,
    );
    assert.ok(error instanceof FetchError);
    assert.equal(
      error.message,
      `Cannot fetch the installer linux from http://mirror:***@127.0.0.1:${new URL(base).port}/nope/vmlinuz: not found (HTTP 404 Not Found)`,
    );
    assert.equal(requests.length, count + 1);
    assert.doesNotMatch(reporter.text(), /pa55-w0rd/);
    assert.deepEqual(await readdir(cacheDir), []);
  });

  test('credentials in the URL go as Basic authentication and never into the log', async () => {
    const cacheDir = join(work, 'http-auth-cache');
    const { ctx, reporter } = context(cacheDir, { kind: 'image', image: source(`${baseWithPassword}/auth/vmlinuz`) });
    await fetchInstaller(ctx);
    assert.deepEqual(await readFile(join(cacheDir, 'vmlinuz')), kernel);
    assert.match(reporter.text(), /downloaded http:\/\/mirror:\*\*\*@127/);
    assert.doesNotMatch(reporter.text(), /pa55-w0rd/);
    assert.doesNotMatch(await readFile(join(cacheDir, 'vmlinuz.http.json'), 'utf8'), /pa55-w0rd/);
  });

  test('a server that drops the connection twice is retried and the third try succeeds', async () => {
    flakyDrops = 0;
    const cacheDir = join(work, 'http-flaky-cache');
    const { ctx, reporter } = context(cacheDir, { kind: 'image', image: source(`${base}/flaky/initrd.gz`) });
    await fetchInstaller(ctx);
    assert.equal(await readFile(join(cacheDir, 'initrd.gz'), 'utf8'), 'initrd');
    const retries = reporter.lines.filter(
      (line) => line.startsWith('warning: image: downloading') && /retrying in/.test(line),
    );
    assert.equal(retries.length, 2, reporter.text());
    assert.match(retries[0], /\(attempt 1 of 4\)/);
  });

  test('one retry loop: each try is one call of the downloader, which never retries itself', async () => {
    const cacheDir = join(work, 'http-standin-cache');
    const { ctx, reporter } = context(cacheDir, {
      kind: 'image',
      image: source('https://u:s3cret@mirror.example/netboot.iso'),
    });
    const calls: Array<{ uri: string; signal?: AbortSignal }> = [];
    ctx.download = async (uri, destination, options = {}) => {
      calls.push({ uri, signal: options.signal });
      if (calls.length < 3) throw new TransferError(`no data for 1m (s3cret)`);
      await writeFile(destination, 'iso');
      return { status: 200, bytes: 3, sha256: sha256('iso') };
    };
    await fetchInstaller(ctx);
    assert.equal(await readFile(join(cacheDir, 'netboot.iso'), 'utf8'), 'iso');
    assert.equal(calls.length, 3);
    assert.ok(
      calls.every((call) => call.uri === 'https://u:s3cret@mirror.example/netboot.iso' && call.signal === ctx.signal),
    );
    assert.match(
      reporter.text(),
      /warning: image: downloading https:\/\/u:\*\*\*@mirror\.example\/netboot\.iso failed \(attempt 1 of 4\): no data for 1m \(\*\*\*\)/,
    );
    assert.doesNotMatch(reporter.text(), /s3cret/);
  });

  test('5xx is retried up to four tries, then fails with the status', async () => {
    const cacheDir = join(work, 'http-503-cache');
    const count = requests.length;
    const { ctx } = context(cacheDir, { kind: 'image', image: source(`${base}/broken/initrd.gz`) });
    await assert.rejects(
      fetchInstaller(ctx),
      /installer image from .*\/broken\/initrd\.gz: the server answered HTTP 503 Service Unavailable/,
    );
    assert.equal(requests.length, count + 4);
    assert.deepEqual(await readdir(cacheDir), []);
  });

  test('a download interrupted midway leaves no file under the final name and no partial', async () => {
    const cacheDir = join(work, 'http-abort-cache');
    const controller = new AbortController();
    const { ctx } = context(
      cacheDir,
      { kind: 'image', image: source(`${base}/slow/netboot.iso`) },
      { signal: controller.signal },
    );
    const fetching = fetchInstaller(ctx);
    await midway;
    // Let the first megabyte land in the partial file.
    for (let i = 0; i < 100 && (await partials(cacheDir)).length === 0; i += 1)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal((await partials(cacheDir)).length, 1, 'the download was writing a partial file');
    controller.abort();
    await assert.rejects(fetching, (error: unknown) => {
      assert.ok(error instanceof AbortedError, String(error));
      assert.match((error as Error).message, /interrupted while fetching the installer image/);
      return true;
    });
    assert.deepEqual(await readdir(cacheDir), []);
    assert.deepEqual(ctx.cleanup.pending(), []);
  });

  test('a dry run says what it would fetch and writes nothing', async () => {
    const cacheDir = join(work, 'http-dry-cache');
    const { ctx, reporter } = context(
      cacheDir,
      {
        kind: 'netboot',
        linux: source(`${baseWithPassword}/dists/vmlinuz`),
        initrd: source('rsync://user:rsync-secret@127.0.0.1:9/debian/initrd.gz'),
      },
      { recording: true },
    );
    const count = requests.length;
    const fetched = await fetchInstaller(ctx);
    assert.deepEqual(fetched, { dir: cacheDir, files: { linux: 'vmlinuz', initrd: 'initrd.gz' }, downloaded: false });
    assert.match(
      reporter.text(),
      /info: linux: would download http:\/\/mirror:\*\*\*@127\.0\.0\.1:\d+\/dists\/vmlinuz to .*http-dry-cache\/vmlinuz/,
    );
    assert.match(
      reporter.text(),
      /command: rsync --no-motd --times --timeout=300 rsync:\/\/user@127\.0\.0\.1:9\/debian\/initrd\.gz .*http-dry-cache\/initrd\.gz/,
    );
    assert.doesNotMatch(reporter.text(), /pa55-w0rd|rsync-secret/);
    assert.equal(requests.length, count);
    await assert.rejects(stat(cacheDir), { code: 'ENOENT' });
  });
});

describe('fetching over rsync', () => {
  test('fetches from a daemon (password through RSYNC_PASSWORD only), then finds the files unchanged', async (t) => {
    const mirror = await folder('rsync-mirror');
    await writeFile(join(mirror, 'vmlinuz'), 'rsync kernel');
    await writeFile(join(mirror, 'initrd.gz'), 'rsync initrd');
    const daemon = await startRsyncDaemon(t, {
      debian: { path: mirror, readOnly: true },
      private: { path: mirror, readOnly: true, secrets: { fetcher: 'rsync-Secret-1' } },
    });
    const cacheDir = join(work, 'rsync-cache');
    const installer = {
      kind: 'netboot' as const,
      linux: source(`${daemon.url('debian')}vmlinuz`, sha256('rsync kernel')),
      initrd: source(`${daemon.url('private', 'fetcher', 'rsync-Secret-1')}initrd.gz`),
    };
    const first = context(cacheDir, installer);
    assert.equal((await fetchInstaller(first.ctx)).downloaded, true);
    assert.equal(await readFile(join(cacheDir, 'vmlinuz'), 'utf8'), 'rsync kernel');
    assert.equal(await readFile(join(cacheDir, 'initrd.gz'), 'utf8'), 'rsync initrd');
    assert.equal((await stat(join(cacheDir, 'initrd.gz'))).mode & 0o777, 0o644);
    assert.match(
      first.reporter.text(),
      new RegExp(
        `command: rsync --no-motd --times --timeout=300 rsync://fetcher@127\\.0\\.0\\.1:${daemon.port}/private/initrd\\.gz `,
      ),
    );
    assert.match(
      first.reporter.text(),
      /initrd: downloaded rsync:\/\/fetcher:\*\*\*@127\.0\.0\.1:\d+\/private\/initrd\.gz to .*\(12 B/,
    );
    assert.doesNotMatch(first.reporter.text(), /rsync-Secret-1/);

    const second = context(cacheDir, installer);
    assert.equal((await fetchInstaller(second.ctx)).downloaded, false);
    assert.match(second.reporter.text(), /linux: vmlinuz taken from cache \(12 B, SHA-256 matches\)/);
    assert.match(
      second.reporter.text(),
      /initrd: initrd.gz taken from cache \(12 B, unchanged on rsync:\/\/fetcher:\*\*\*@/,
    );
    assert.equal(
      second.reporter.lines.filter((line) => line.startsWith('command: rsync')).length,
      1,
      'the verified kernel needed no rsync',
    );
  });

  test("a file missing on the mirror fails once (not retried) with rsync's message", async (t) => {
    const mirror = await folder('rsync-mirror-missing');
    const daemon = await startRsyncDaemon(t, { debian: { path: mirror, readOnly: true } });
    const cacheDir = join(work, 'rsync-missing-cache');
    const { ctx, reporter } = context(cacheDir, { kind: 'image', image: source(`${daemon.url('debian')}netboot.iso`) });
    await assert.rejects(fetchInstaller(ctx), (error: unknown) => {
      assert.ok(error instanceof FetchError);
      assert.match(
        error.message,
        /installer image from rsync:\/\/127\.0\.0\.1:\d+\/debian\/netboot\.iso: rsync exited with code 23: .*No such file or directory/,
      );
      return true;
    });
    assert.equal(reporter.lines.filter((line) => line.startsWith('command: rsync')).length, 1);
    assert.deepEqual(await readdir(cacheDir), []);
  });
});
