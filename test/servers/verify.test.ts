import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSource, type ImageSpec, type InstallerSource } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import type { VerificationSpec } from '../../src/config/verification-spec.js';
import { fetchInstaller } from '../../src/pipeline/fetch.js';
import { testContext, testSpec } from '../support/build-context.js';
import { SigningKey } from '../support/signing-key.js';

/**
 * Each distribution's form of a signed checksum list, made in the test with a
 * key of its own (the distributions' keys cannot sign test data), run through
 * the fetch step on the machine: good, tampered, wrongly signed.
 */

const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');
const source = (path: string): InstallerSource => parseSource(path, (message) => new UsageError(message));

let work: string;
let key: SigningKey;
let stranger: SigningKey;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'verify-formats-'));
  key = new SigningKey('Distribution Signer');
  stranger = new SigningKey('Somebody Else');
});
after(async () => {
  key.dispose();
  stranger.dispose();
  await rm(work, { recursive: true, force: true });
});

interface Mirror {
  root: string;
  files: Record<string, string>;
}

/** A mirror folder with the installer files at their paths. */
async function mirror(name: string, files: Record<string, string>): Promise<Mirror> {
  const root = join(work, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return { root, files };
}

async function fetchWith(
  m: Mirror,
  installer: ImageSpec['installer'],
  verification: VerificationSpec,
): Promise<{ result?: Awaited<ReturnType<typeof fetchInstaller>>; error?: Error; cache: string[]; log: string }> {
  const cacheDir = join(m.root, '..', `${m.root.split('/').at(-1)}-cache-${Math.random().toString(16).slice(2)}`);
  const { ctx, reporter } = testContext(
    testSpec({ name: 'verify-test', outputDir: cacheDir, cacheDir, installer, verification }),
  );
  try {
    const result = await fetchInstaller(ctx);
    return { result, cache: await installerFiles(cacheDir), log: reporter.text() };
  } catch (error) {
    assert.deepEqual(ctx.cleanup.pending(), [], 'a failed fetch leaves nothing registered');
    const cache = await installerFiles(cacheDir).catch(() => []);
    return { error: error as Error, cache, log: reporter.text() };
  }
}

function netboot(m: Mirror, linux: string, initrd: string): ImageSpec['installer'] {
  return { kind: 'netboot', linux: source(join(m.root, linux)), initrd: source(join(m.root, initrd)) };
}

/** The installer files in a cache folder, without the sidecars that record where each came from. */
async function installerFiles(cacheDir: string): Promise<string[]> {
  return (await readdir(cacheDir)).filter((name) => !/\.(copy|http)\.json$/.test(name));
}

describe('Ubuntu: SHA256SUMS (sha256sum lines, `*` binary marks) with a detached SHA256SUMS.gpg', () => {
  const files = { 'netboot/amd64/linux': 'ubuntu kernel', 'netboot/amd64/initrd': 'ubuntu initrd' };
  async function setup(name: string, signer: SigningKey, listed = files): Promise<[Mirror, VerificationSpec]> {
    const m = await mirror(name, files);
    const list = Object.entries(listed).map(([path, content]) => `${sha256(content)} *${path}\n`);
    await writeFile(join(m.root, 'SHA256SUMS'), list.join(''));
    signer.detach(join(m.root, 'SHA256SUMS'), join(m.root, 'SHA256SUMS.gpg'));
    const spec = {
      checksums: source(join(m.root, 'SHA256SUMS')),
      signature: source(join(m.root, 'SHA256SUMS.gpg')),
      keyring: key.keyring,
      names: {},
    };
    return [m, spec];
  }

  test('good: both files verified, the record names the key and the list', async () => {
    const [m, spec] = await setup('ubuntu-good', key);
    const run = await fetchWith(m, netboot(m, 'netboot/amd64/linux', 'netboot/amd64/initrd'), spec);
    assert.equal(run.error, undefined, run.log);
    const chain = run.result?.verification;
    assert.equal(chain?.form, 'detached');
    assert.deepEqual(chain?.fingerprints, [key.fingerprint]);
    assert.deepEqual(chain?.files.linux, { name: 'netboot/amd64/linux', sha256: sha256(files['netboot/amd64/linux']) });
    assert.match(run.log, new RegExp(`verified: .*SHA256SUMS.*${key.fingerprint}`));
    assert.deepEqual(run.cache.sort(), ['initrd', 'linux']);
  });

  test('tampered file: refused, naming the file, the expected and the actual SHA-256; nothing cached', async () => {
    const [m, spec] = await setup('ubuntu-tampered', key);
    await writeFile(join(m.root, 'netboot/amd64/initrd'), 'ubuntu initrD');
    const run = await fetchWith(m, netboot(m, 'netboot/amd64/linux', 'netboot/amd64/initrd'), spec);
    assert.ok(run.error, 'refused');
    assert.match(run.error.message, /installer initrd from .*netboot\/amd64\/initrd/);
    assert.ok(run.error.message.includes(`expected ${sha256('ubuntu initrd')}`), run.error.message);
    assert.ok(run.error.message.includes(`got ${sha256('ubuntu initrD')}`), run.error.message);
    assert.ok(!run.cache.includes('initrd'), `nothing a later run would trust: ${run.cache.join(', ')}`);
  });

  test('tampered list: the signature is BAD', async () => {
    const [m, spec] = await setup('ubuntu-list-tampered', key);
    await writeFile(join(m.root, 'SHA256SUMS'), `${sha256('evil')} *netboot/amd64/linux\n`);
    const run = await fetchWith(m, netboot(m, 'netboot/amd64/linux', 'netboot/amd64/initrd'), spec);
    assert.match(run.error?.message ?? '', /signature of .*SHA256SUMS by key [0-9A-F]{16} is BAD/);
    assert.deepEqual(run.cache, []);
  });

  test('wrongly signed: refused, naming the key the keyring lacks', async () => {
    const [m, spec] = await setup('ubuntu-stranger', stranger);
    const run = await fetchWith(m, netboot(m, 'netboot/amd64/linux', 'netboot/amd64/initrd'), spec);
    assert.ok(run.error);
    assert.ok(run.error.message.includes(stranger.fingerprint.slice(-16)), run.error.message);
    assert.match(run.error.message, /does not hold/);
  });
});

describe('Fedora and Enterprise Linux: a clearsigned CHECKSUM with BSD-style lines', () => {
  const files = { 'images/pxeboot/vmlinuz': 'el kernel', 'images/pxeboot/initrd.img': 'el initrd' };
  async function setup(name: string, signer: SigningKey): Promise<[Mirror, VerificationSpec]> {
    const m = await mirror(name, files);
    const lines = ['# Fedora-Everything-netinst-x86_64-44.iso: 123 bytes'];
    for (const [path, content] of Object.entries(files)) lines.push(`SHA256 (${path}) = ${sha256(content)}`);
    await writeFile(join(m.root, 'CHECKSUM.unsigned'), `${lines.join('\n')}\n`);
    signer.clearsign(join(m.root, 'CHECKSUM.unsigned'), join(m.root, 'CHECKSUM'));
    return [m, { checksums: source(join(m.root, 'CHECKSUM')), keyring: key.keyring, names: {} }];
  }
  const installer = (m: Mirror): ImageSpec['installer'] =>
    netboot(m, 'images/pxeboot/vmlinuz', 'images/pxeboot/initrd.img');

  test('good', async () => {
    const [m, spec] = await setup('el-good', key);
    const run = await fetchWith(m, installer(m), spec);
    assert.equal(run.error, undefined, run.log);
    assert.equal(run.result?.verification?.form, 'clearsigned');
    assert.deepEqual(run.result?.verification?.fingerprints, [key.fingerprint]);
  });

  test('tampered: a line changed inside the signed text is a BAD signature', async () => {
    const [m, spec] = await setup('el-tampered', key);
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(join(m.root, 'CHECKSUM'), 'utf8');
    await writeFile(join(m.root, 'CHECKSUM'), text.replace(sha256('el kernel'), sha256('evil kernel')));
    const run = await fetchWith(m, installer(m), spec);
    assert.match(run.error?.message ?? '', /is BAD/);
  });

  test('lines outside the signed text are not trusted', async () => {
    const [m, spec] = await setup('el-outside', key);
    await writeFile(join(m.root, 'images/pxeboot/vmlinuz'), 'evil kernel');
    const { appendFile } = await import('node:fs/promises');
    await appendFile(join(m.root, 'CHECKSUM'), `SHA256 (images/pxeboot/vmlinuz) = ${sha256('evil kernel')}\n`);
    const run = await fetchWith(m, installer(m), spec);
    assert.ok(run.error?.message.includes(`expected ${sha256('el kernel')}`), run.error?.message);
  });

  test('wrongly signed', async () => {
    const [m, spec] = await setup('el-stranger', stranger);
    const run = await fetchWith(m, installer(m), spec);
    assert.ok(run.error?.message.includes(stranger.fingerprint.slice(-16)), run.error?.message);
  });

  test('a list that does not name the file: refused, saying which key names it', async () => {
    const [m, spec] = await setup('el-unnamed', key);
    spec.names.initrd = 'images/pxeboot/initrd-other.img';
    const run = await fetchWith(m, installer(m), spec);
    assert.match(run.error?.message ?? '', /does not list images\/pxeboot\/initrd-other\.img .*initrd_checksum_name/);
  });
});

describe('openSUSE: an image with its .sha256 and an armoured detached .sha256.asc', () => {
  const iso = 'openSUSE-Leap-15.6-NET-x86_64-Media.iso';
  async function setup(name: string, signer: SigningKey): Promise<[Mirror, VerificationSpec]> {
    const m = await mirror(name, { [`iso/${iso}`]: 'suse iso' });
    await writeFile(join(m.root, `iso/${iso}.sha256`), `${sha256('suse iso')}  ${iso}\n`);
    signer.detach(join(m.root, `iso/${iso}.sha256`), join(m.root, `iso/${iso}.sha256.asc`), true);
    const spec = {
      checksums: source(join(m.root, `iso/${iso}.sha256`)),
      signature: source(join(m.root, `iso/${iso}.sha256.asc`)),
      keyring: key.keyring,
      names: {},
    };
    return [m, spec];
  }
  const installer = (m: Mirror): ImageSpec['installer'] => ({
    kind: 'image',
    image: source(join(m.root, `iso/${iso}`)),
  });

  test('good', async () => {
    const [m, spec] = await setup('suse-good', key);
    const run = await fetchWith(m, installer(m), spec);
    assert.equal(run.error, undefined, run.log);
    assert.equal(run.result?.verification?.files.image?.name, iso);
  });

  test('tampered image', async () => {
    const [m, spec] = await setup('suse-tampered', key);
    await writeFile(join(m.root, `iso/${iso}`), 'suse isO');
    const run = await fetchWith(m, installer(m), spec);
    assert.match(run.error?.message ?? '', /SHA-256 mismatch/);
    assert.deepEqual(run.cache, []);
  });

  test('wrongly signed', async () => {
    const [m, spec] = await setup('suse-stranger', stranger);
    const run = await fetchWith(m, installer(m), spec);
    assert.ok(run.error?.message.includes(stranger.fingerprint.slice(-16)), run.error?.message);
  });
});

describe('Debian form with a test key: a clearsigned InRelease listing SHA256SUMS', () => {
  const files = { 'main/images/netboot/linux': 'deb kernel', 'main/images/netboot/initrd.gz': 'deb initrd' };
  async function setup(name: string): Promise<[Mirror, VerificationSpec]> {
    const m = await mirror(name, files);
    const sums = Object.entries(files).map(([p, c]) => `${sha256(c)}  ./${p.replace('main/images/', '')}\n`);
    await writeFile(join(m.root, 'main/images/SHA256SUMS'), sums.join(''));
    const { readFile } = await import('node:fs/promises');
    const listed = sha256(await readFile(join(m.root, 'main/images/SHA256SUMS'), 'utf8'));
    const release = `Origin: Test\nMD5Sum:\n 00000000000000000000000000000000 1 x\nSHA256:\n ${listed}      99 main/images/SHA256SUMS\n`;
    await writeFile(join(m.root, 'Release'), release);
    key.clearsign(join(m.root, 'Release'), join(m.root, 'InRelease'));
    const spec = {
      checksums: source(join(m.root, 'main/images/SHA256SUMS')),
      release: source(join(m.root, 'InRelease')),
      keyring: key.keyring,
      names: {},
    };
    return [m, spec];
  }
  const installer = (m: Mirror): ImageSpec['installer'] =>
    netboot(m, 'main/images/netboot/linux', 'main/images/netboot/initrd.gz');

  test('good', async () => {
    const [m, spec] = await setup('deb-good');
    const run = await fetchWith(m, installer(m), spec);
    assert.equal(run.error, undefined, run.log);
    assert.equal(run.result?.verification?.release?.name, 'main/images/SHA256SUMS');
  });

  test('SHA256SUMS changed: refused, naming the release file', async () => {
    const [m, spec] = await setup('deb-sums-changed');
    await writeFile(join(m.root, 'main/images/SHA256SUMS'), `${sha256('evil')}  ./netboot/linux\n`);
    const run = await fetchWith(m, installer(m), spec);
    assert.match(run.error?.message ?? '', /is not the one the release file .*InRelease lists/);
  });
});
