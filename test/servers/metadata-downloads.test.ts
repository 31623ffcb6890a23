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
import { fetchInstaller } from '../../src/pipeline/fetch.js';
import { loadPreviousManifest } from '../../src/pipeline/previous-manifest.js';
import { RecordingReporter, testContext, testSpec } from '../support/build-context.js';
import { SigningKey } from '../support/signing-key.js';

/**
 * What vouches for the installer files (checksum list, signature, release
 * file) and the previous manifest, over HTTP from a server on 127.0.0.1 that
 * cuts a first response short.
 */

process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '20';

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const source = (uri: string): InstallerSource => parseSource(uri, (message) => new UsageError(message));

let work: string;
let key: SigningKey;
/** The files served, by path; `/cut/…` cuts each path's first response short. */
const served = new Map<string, Buffer>();
const requests: string[] = [];
let base = '';

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const url = req.url ?? '';
  requests.push(url);
  const [, mode, ...rest] = url.split('/');
  const body = served.get(`/${rest.join('/')}`);
  if (body === undefined) return void res.writeHead(404).end();
  res.writeHead(200, { 'Content-Length': body.length });
  const first = requests.filter((seen) => seen === url).length === 1;
  if (mode === 'cut' && first) {
    return void res.write(body.subarray(0, Math.floor(body.length / 2)), () => req.socket.destroy());
  }
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
  try {
    return { result: await fetchInstaller(ctx), log: reporter.text() };
  } catch (error) {
    return { error: error as Error, log: reporter.text() };
  }
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
