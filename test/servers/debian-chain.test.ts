import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSource, type ImageSpec, type InstallerSource } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import type { VerificationSpec } from '../../src/config/verification-spec.js';
import { fetchInstaller } from '../../src/pipeline/fetch.js';
import { testContext, testSpec } from '../support/build-context.js';
import { REPO_ROOT } from '../support/fixture.js';

/**
 * Debian's real chain, end to end: the netboot linux and initrd.gz from the
 * debian-installer-12-netboot-amd64 package, served by a local HTTP server
 * under the archive's path layout (the archive's own netboot folder is not
 * served here), verified by the fetch step against the real InRelease and
 * SHA256SUMS from the archive and the host's Debian keyring.
 */

const ARCHIVE = 'https://deb.debian.org/debian';
const IMAGES = '/debian/dists/bookworm/main/installer-amd64/current/images';
const NETBOOT = `${IMAGES}/netboot/debian-installer/amd64`;
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const PACKAGE = 'debian-installer-12-netboot-amd64';
const CACHE = join(REPO_ROOT, 'test', '.cache', 'debian-netboot');
const IN_PACKAGE = 'usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64';

const source = (uri: string): InstallerSource => parseSource(uri, (message) => new UsageError(message));
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The package's netboot files, from the .deb kept in test/.cache (downloaded once with apt-get). */
function netbootFiles(): string {
  const files = join(CACHE, 'files');
  if (existsSync(join(files, 'initrd.gz'))) return files;
  mkdirSync(CACHE, { recursive: true });
  if (!readdirSync(CACHE).some((name) => name.endsWith('.deb')))
    execFileSync('apt-get', ['download', '-q', PACKAGE], { cwd: CACHE, stdio: 'inherit' });
  const deb = readdirSync(CACHE).find((name) => name.startsWith(`${PACKAGE}_`) && name.endsWith('.deb')) ?? '';
  const unpacked = join(CACHE, 'unpacked');
  execFileSync('dpkg-deb', ['-x', join(CACHE, deb), unpacked]);
  mkdirSync(files, { recursive: true });
  for (const name of ['linux', 'initrd.gz']) execFileSync('cp', [join(unpacked, IN_PACKAGE, name), files]);
  execFileSync('rm', ['-rf', unpacked]);
  return files;
}

let work: string;
let served: string;
let server: Server;
let base: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'debian-chain-'));
  served = join(work, 'served');
  execFileSync('mkdir', ['-p', served]);
  const files = netbootFiles();
  for (const name of ['linux', 'initrd.gz']) await copyFile(join(files, name), join(served, name));
  server = createServer((request, response) => {
    // A mirror under the archive's layout: the netboot files, and (for one test) a changed SHA256SUMS.
    const url = request.url ?? '';
    const name =
      url === `${IMAGES}/SHA256SUMS`
        ? 'SHA256SUMS'
        : url.startsWith(`${NETBOOT}/`)
          ? url.slice(NETBOOT.length + 1)
          : '';
    if (!['linux', 'initrd.gz', 'SHA256SUMS'].includes(name)) return void response.writeHead(404).end();
    readFile(join(served, name)).then(
      (body) => response.writeHead(200, { 'Content-Length': body.length }).end(body),
      () => response.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.close();
  await rm(work, { recursive: true, force: true });
});

function installer(): ImageSpec['installer'] {
  return { kind: 'netboot', linux: source(`${base}${NETBOOT}/linux`), initrd: source(`${base}${NETBOOT}/initrd.gz`) };
}

function chain(overrides: Partial<VerificationSpec> = {}): VerificationSpec {
  return {
    release: source(`${ARCHIVE}/dists/bookworm/InRelease`),
    checksums: source(`${ARCHIVE}/dists/bookworm/main/installer-amd64/current/images/SHA256SUMS`),
    keyring: KEYRING,
    names: {},
    ...overrides,
  };
}

async function fetchStep(cacheName: string, verification: VerificationSpec) {
  const cacheDir = join(work, cacheName);
  const { ctx, reporter } = testContext(
    testSpec({ name: 'Debian-12-server', outputDir: cacheDir, cacheDir, installer: installer(), verification }),
  );
  const started = Date.now();
  try {
    const result = await fetchInstaller(ctx);
    return { result, ms: Date.now() - started, log: reporter.text(), cache: await readdir(cacheDir) };
  } catch (error) {
    const cache = await readdir(cacheDir).catch(() => [] as string[]);
    return { error: error as Error, ms: Date.now() - started, log: reporter.text(), cache };
  }
}

describe("Debian 12's real chain: InRelease -> SHA256SUMS -> netboot linux and initrd.gz", () => {
  test('the fetch step passes, and records the signing keys and the list hash', async () => {
    const run = await fetchStep('good', chain());
    assert.equal(run.error, undefined, `${run.error?.message}\n${run.log}`);
    const record = run.result?.verification;
    assert.equal(record?.form, 'release');
    // Debian Stable Release Key (12/bookworm), among the archive's signing keys.
    assert.ok(record?.fingerprints.includes('4D64FEC119C2029067D6E791F8D2585B8783D481'), record?.fingerprints.join());
    assert.equal(record?.files.initrd?.name, 'netboot/debian-installer/amd64/initrd.gz');
    assert.equal(record?.files.initrd?.sha256, sha256(await readFile(join(served, 'initrd.gz'))));
    assert.deepEqual(run.cache.sort(), ['initrd.gz', 'linux']);
    process.stdout.write(`# fetch step on the real chain: ${run.ms} ms\n# ${run.log.split('\n').at(-1)}\n`);

    // The next build re-verifies the cached files against a fresh list (and downloads nothing).
    const again = await fetchStep('good', chain());
    assert.equal(again.error, undefined, again.log);
    assert.equal(again.result?.downloaded, false);
    assert.match(again.log, /initrd: initrd\.gz taken from cache .*SHA-256 matches/);
  });

  test('one byte of the initrd changed: refused, naming the file and both hashes; nothing cached', async () => {
    const initrd = await readFile(join(served, 'initrd.gz'));
    const changed = Buffer.from(initrd);
    changed[changed.length >> 1] ^= 0x01;
    await writeFile(join(served, 'initrd.gz'), changed);
    try {
      const run = await fetchStep('one-byte', chain());
      const message = run.error?.message ?? '';
      assert.match(message, /installer initrd from http:\/\/127\.0\.0\.1:\d+\/.*\/initrd\.gz/);
      assert.ok(message.includes(`expected ${sha256(initrd)}`), message);
      assert.ok(message.includes(`got ${sha256(changed)}`), message);
      assert.match(message, /dists\/bookworm\/InRelease signed by key/);
      assert.ok(!run.cache.includes('initrd.gz') && !run.cache.some((n) => n.includes('partial')), run.cache.join());
    } finally {
      await writeFile(join(served, 'initrd.gz'), initrd);
    }
  });

  test('SHA256SUMS changed: refused, naming the release file', async () => {
    const real = join(served, 'SHA256SUMS');
    execFileSync('curl', [
      '-sSf',
      '-o',
      real,
      `${ARCHIVE}/dists/bookworm/main/installer-amd64/current/images/SHA256SUMS`,
    ]);
    const text = await readFile(real, 'utf8');
    const initrd = sha256(await readFile(join(served, 'initrd.gz')));
    // The mirror's SHA256SUMS names another initrd (as a compromised mirror's would).
    await writeFile(real, text.replace(initrd, sha256(Buffer.from('another initrd'))));
    const run = await fetchStep('sums-changed', chain({ checksums: source(`${base}${IMAGES}/SHA256SUMS`) }));
    assert.match(
      run.error?.message ?? '',
      /is not the one the release file https:\/\/deb\.debian\.org\/.*InRelease lists/,
    );
    assert.deepEqual(run.cache, []);
  });

  test("a keyring that lacks Debian's key: refused, naming the key", async () => {
    // bullseye's keys, which sign nothing of bookworm's.
    const run = await fetchStep(
      'foreign-keyring',
      chain({ keyring: '/usr/share/keyrings/debian-archive-bullseye-stable.gpg' }),
    );
    assert.match(
      run.error?.message ?? '',
      /InRelease is signed by key .*F8D2585B8783D481.*which the keyring .* does not hold/,
    );
    assert.deepEqual(run.cache, []);
  });
});
