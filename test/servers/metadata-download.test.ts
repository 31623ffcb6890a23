import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSource, type ImageSpec, type InstallerSource } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import type { VerificationSpec } from '../../src/config/verification-spec.js';
import { downloadFile, type DownloadOptions } from '../../src/net/http-download.js';
import { METADATA_DEADLINE_MS } from '../../src/net/metadata-download.js';
import type { Downloader } from '../../src/context/build-context.js';
import { fetchInstaller } from '../../src/pipeline/fetch.js';
import { loadPreviousManifest } from '../../src/supply-chain/previous-manifest.js';
import { loadPreviousMetrics } from '../../src/supply-chain/previous-metrics.js';
import { RecordingReporter, testContext, testSpec } from '../support/build-context.js';
import { SigningKey } from '../support/signing-key.js';

/**
 * What vouches for the installer files (checksum list, signature, release
 * file) and the previous manifest, over HTTP from a server on 127.0.0.1 that
 * cuts a first response short, sends without end, or sends a byte at a time.
 */

process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '20';

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const source = (uri: string): InstallerSource => parseSource(uri, (message) => new UsageError(message));
const MiB = 2 ** 20;
/** Where a server "without end" stops: a guard against a downloader without a limit filling the disk. */
const ENDLESS_GUARD = 256 * MiB;
/** Where a dripping server stops: a guard against a downloader without a deadline waiting for ever. */
const DRIP_GUARD_MS = 30_000;

let work: string;
let key: SigningKey;
/** The files served, by path; `/cut/…` cuts each path's first response short, `/endless/…` and `/drip/…` never end. */
const served = new Map<string, Buffer>();
const requests: string[] = [];
/** Bytes written to each response, by path, once its connection closed. */
const sent = new Map<string, Promise<number>>();
let base = '';

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const url = req.url ?? '';
  requests.push(url);
  let bytes = 0;
  sent.set(url, new Promise((resolve) => res.on('close', () => resolve(bytes))));
  const write = (chunk: Buffer): boolean => {
    bytes += chunk.length;
    return res.write(chunk);
  };
  const [, mode, ...rest] = url.split('/');
  const body = served.get(`/${rest.join('/')}`);
  if (mode === 'endless') {
    res.writeHead(200);
    const chunk = Buffer.alloc(MiB, 'x');
    const more = (): void => {
      while (!res.destroyed && bytes < ENDLESS_GUARD) if (!write(chunk)) return void res.once('drain', more);
      res.end();
    };
    return more();
  }
  if (mode === 'drip') {
    res.writeHead(200);
    const timer = setInterval(() => write(Buffer.from('.')), 20);
    const guard = setTimeout(() => res.end(), DRIP_GUARD_MS);
    return void res.on('close', () => (clearInterval(timer), clearTimeout(guard)));
  }
  if (body === undefined) return void res.writeHead(404).end();
  res.writeHead(200, { 'Content-Length': body.length });
  const first = requests.filter((seen) => seen === url).length === 1;
  if (mode === 'cut' && first) {
    bytes = Math.floor(body.length / 2);
    return void res.write(body.subarray(0, bytes), () => req.socket.destroy());
  }
  bytes = body.length;
  res.end(body);
});

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'metadata-downloads-'));
  key = new SigningKey('Distribution Signer');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  key.dispose();
  await rm(work, { recursive: true, force: true });
});

const files = { 'netboot/linux': 'kernel', 'netboot/initrd.gz': 'initrd' };
/** The installer files' names in the list (they are fetched from elsewhere than the list). */
const NAMES = { linux: 'netboot/linux', initrd: 'netboot/initrd.gz' };

/**
 * A mirror folder with the installer files (fetched from it as paths) and
 * SHA256SUMS, SHA256SUMS.gpg and InRelease, each served under `/<name>/…`.
 */
async function mirror(name: string): Promise<string> {
  const root = join(work, name);
  await mkdir(join(root, 'netboot'), { recursive: true });
  for (const [path, content] of Object.entries(files)) await writeFile(join(root, path), content);
  const list = Object.entries(files).map(([path, content]) => `${sha256(content)}  ./${path}\n`);
  await writeFile(join(root, 'SHA256SUMS'), list.join(''));
  key.detach(join(root, 'SHA256SUMS'), join(root, 'SHA256SUMS.gpg'));
  const listed = sha256(await readFile(join(root, 'SHA256SUMS')));
  await writeFile(join(root, 'Release'), `Origin: Test\nSHA256:\n ${listed} 99 SHA256SUMS\n`);
  key.clearsign(join(root, 'Release'), join(root, 'InRelease'));
  for (const file of ['SHA256SUMS', 'SHA256SUMS.gpg', 'InRelease'])
    served.set(`/${name}/${file}`, await readFile(join(root, file)));
  return root;
}

async function fetchWith(
  root: string,
  verification: VerificationSpec,
  download?: Downloader,
): Promise<{ result?: Awaited<ReturnType<typeof fetchInstaller>>; error?: Error; log: string }> {
  const cacheDir = join(root, 'cache');
  const installer: ImageSpec['installer'] = {
    kind: 'netboot',
    linux: source(join(root, 'netboot/linux')),
    initrd: source(join(root, 'netboot/initrd.gz')),
  };
  const { ctx, reporter } = testContext(
    testSpec({ name: 'metadata-test', outputDir: cacheDir, cacheDir, installer, verification }),
  );
  if (download) ctx.download = download;
  try {
    return { result: await fetchInstaller(ctx), log: reporter.text() };
  } catch (error) {
    return { error: error as Error, log: reporter.text() };
  }
}

/** A downloader that records the options it was given and gives a download from `/drip/…` `deadlineMs` at most. */
function withDeadline(deadlineMs: number, given: DownloadOptions[]): Downloader {
  return (uri, destination, options = {}) => {
    given.push(options);
    const short = uri.includes('/drip/') ? { deadlineMs: Math.min(options.deadlineMs ?? deadlineMs, deadlineMs) } : {};
    return downloadFile(uri, destination, { ...options, ...short });
  };
}

const manifest = JSON.stringify({ image: 'img-2026-11-01.qcow2', date: '2026-11-01', packages: [] });

describe('each retry of a metadata download starts clean', () => {
  test('a checksum list and its detached signature, each cut short on the first try, verify on the second', async () => {
    const root = await mirror('cut-detached');
    const run = await fetchWith(root, {
      checksums: source(`${base}/cut/cut-detached/SHA256SUMS`),
      signature: source(`${base}/cut/cut-detached/SHA256SUMS.gpg`),
      keyring: key.keyring,
      names: NAMES,
    });
    assert.equal(run.error, undefined, run.log);
    assert.deepEqual(run.result?.verification?.fingerprints, [key.fingerprint]);
    for (const file of ['SHA256SUMS', 'SHA256SUMS.gpg']) {
      const warning = `warning: downloading ${base}/cut/cut-detached/${file} failed (attempt 1 of 4): the connection closed after`;
      assert.ok(run.log.includes(warning), run.log);
    }
    assert.doesNotMatch(run.log, /EEXIST|attempt 2 of/);
  });

  test('a release file and the checksum list it lists, each cut short on the first try, verify on the second', async () => {
    const root = await mirror('cut-release');
    const run = await fetchWith(root, {
      checksums: source(`${base}/cut/cut-release/SHA256SUMS`),
      release: source(`${base}/cut/cut-release/InRelease`),
      keyring: key.keyring,
      names: NAMES,
    });
    assert.equal(run.error, undefined, run.log);
    assert.match(run.log, /warning: downloading .*\/cut\/cut-release\/InRelease failed \(attempt 1 of 4\)/);
    assert.doesNotMatch(run.log, /EEXIST|attempt 2 of/);
  });

  test('a previous manifest cut short on the first try is read on the second', async () => {
    served.set('/previous/manifest.json', Buffer.from(manifest));
    const reporter = new RecordingReporter();
    const loaded = await loadPreviousManifest(source(`${base}/cut/previous/manifest.json`), { reporter, live: true });
    assert.ok('manifest' in loaded, `${JSON.stringify(loaded)}\n${reporter.text()}`);
    assert.equal(loaded.manifest.image, 'img-2026-11-01.qcow2');
    assert.match(reporter.text(), /warning: downloading .*manifest\.json failed \(attempt 1 of 4\)/);
  });
});

describe('metadata downloads are bounded in size and time', () => {
  test('a checksum list without end is stopped past 16 MiB: the fetch step fails, naming it and the limit', async () => {
    const root = await mirror('endless-list');
    const uri = `${base}/endless/endless-list/SHA256SUMS`;
    const run = await fetchWith(root, { checksums: source(uri), names: {} });
    assert.match(run.error?.message ?? '', new RegExp(`cannot fetch ${uri}: more than 16\\.0 MiB arrived`));
    const bytes = (await sent.get(new URL(uri).pathname)) ?? 0;
    assert.ok(bytes < 32 * MiB, `the server sent ${bytes} bytes before the download stopped`);
    assert.equal(requests.filter((url) => url === new URL(uri).pathname).length, 1, 'not retried');
  });

  test('a previous manifest without end is stopped past 64 MiB, while it arrives: bad input (exit 2)', async () => {
    const uri = `${base}/endless/previous/huge.json`;
    const reporter = new RecordingReporter();
    await assert.rejects(
      loadPreviousManifest(source(uri), { reporter, live: true }),
      (error: Error) =>
        error instanceof UsageError &&
        error.message.includes(`previous-manifest: ${uri} is larger than any manifest (more than 64.0 MiB arrived`),
    );
    const bytes = (await sent.get(new URL(uri).pathname)) ?? 0;
    assert.ok(bytes < 96 * MiB, `the server sent ${bytes} bytes before the download stopped`);
  });

  test('previous metrics without end are stopped past 4 MiB, as a previous manifest is: bad input (exit 2)', async () => {
    const uri = `${base}/endless/previous/huge.metrics.json`;
    const reporter = new RecordingReporter();
    await assert.rejects(
      loadPreviousMetrics([source(uri)], { reporter, live: true }),
      (error: Error) =>
        error instanceof UsageError &&
        error.message.includes(`previous-metrics: ${uri} is larger than any metrics file (more than 4.0 MiB arrived`),
    );
    const bytes = (await sent.get(new URL(uri).pathname)) ?? 0;
    assert.ok(bytes < 36 * MiB, `the server sent ${bytes} bytes before the download stopped`);
  });

  test('previous metrics that cannot be had (404) are warned about and left out of the history; the build goes on', async () => {
    const uri = `${base}/plain/previous/missing.metrics.json`;
    const reporter = new RecordingReporter();
    assert.deepEqual(await loadPreviousMetrics([source(uri)], { reporter, live: true }), []);
    assert.match(reporter.text(), new RegExp(`warning: previous-metrics: ${uri} could not be downloaded \\(.*404`));
  });

  test('a signature sent a byte at a time is given up at the deadline, not retried', async () => {
    const root = await mirror('drip-signature');
    const given: DownloadOptions[] = [];
    const uri = `${base}/drip/drip-signature/SHA256SUMS.gpg`;
    const run = await fetchWith(
      root,
      {
        checksums: source(`${base}/plain/drip-signature/SHA256SUMS`),
        signature: source(uri),
        keyring: key.keyring,
        names: {},
      },
      withDeadline(300, given),
    );
    assert.match(run.error?.message ?? '', new RegExp(`cannot fetch ${uri}: not finished after 0\\.3 s`));
    assert.deepEqual(
      given.map((options) => [options.maxBytes, options.deadlineMs]),
      [
        [16 * MiB, METADATA_DEADLINE_MS],
        [16 * MiB, METADATA_DEADLINE_MS],
      ],
      'the list and the signature, each downloaded once with a limit and a deadline',
    );
  });

  test('a previous manifest sent a byte at a time is given up at the deadline: the build goes on without it', async () => {
    const given: DownloadOptions[] = [];
    const reporter = new RecordingReporter();
    const loaded = await loadPreviousManifest(source(`${base}/drip/previous/manifest.json`), {
      reporter,
      live: true,
      download: withDeadline(300, given),
    });
    assert.ok('unavailable' in loaded && /not finished after 0\.3 s/.test(loaded.unavailable), JSON.stringify(loaded));
    assert.deepEqual(
      given.map((options) => [options.maxBytes, options.deadlineMs]),
      [[64 * MiB, METADATA_DEADLINE_MS]],
    );
  });
});
