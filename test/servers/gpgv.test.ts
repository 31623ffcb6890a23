import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSource, type ImageSpec, type InstallerSource } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import type { VerificationSpec } from '../../src/config/verification-spec.js';
import { fetchInstaller } from '../../src/pipeline/fetch.js';
import { testContext, testSpec } from '../support/build-context.js';
import { SigningKey } from '../support/signing-key.js';

/**
 * gpgv says VALIDSIG for every signature whose mathematics hold, also beside
 * REVKEYSIG, EXPKEYSIG and EXPSIG, and exits 0 for the first two: a checksum
 * list is trusted only on a GOODSIG. Keys made by gpg in the test: one
 * revoked (its revocation in the keyring), one made in 2020 that expired in
 * 2021, one that signed in 2020 with a signature valid for a day.
 */

const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');
const source = (path: string): InstallerSource => parseSource(path, (message) => new UsageError(message));
const PAST = '20200201T000000';

let work: string;
let good: SigningKey;
let revoked: SigningKey;
let expired: SigningKey;
let old: SigningKey;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'gpgv-'));
  good = new SigningKey('Distribution Signer');
  revoked = new SigningKey('Revoked Signer');
  expired = new SigningKey('Expired Signer', { made: '20200101T000000', expires: '1y' });
  old = new SigningKey('Old Signer', { made: '20200101T000000' });
});
after(async () => {
  for (const key of [good, revoked, expired, old]) key.dispose();
  await rm(work, { recursive: true, force: true });
});

const files = { 'netboot/linux': 'kernel', 'netboot/initrd.gz': 'initrd' };

/** A mirror folder with the installer files and a SHA256SUMS listing them. */
async function mirror(name: string): Promise<string> {
  const root = join(work, name);
  await mkdir(join(root, 'netboot'), { recursive: true });
  for (const [path, content] of Object.entries(files)) await writeFile(join(root, path), content);
  const list = Object.entries(files).map(([path, content]) => `${sha256(content)}  ./${path}\n`);
  await writeFile(join(root, 'SHA256SUMS'), list.join(''));
  return root;
}

/** One keyring file holding the public keys (and revocations) of `keys`, as a distribution's keyring holds several. */
async function keyringOf(root: string, keys: SigningKey[]): Promise<string> {
  const path = join(root, 'keyring.gpg');
  await writeFile(path, Buffer.concat(await Promise.all(keys.map((key) => readFile(key.keyring)))));
  return path;
}

/** SHA256SUMS.gpg with one detached signature by each signer (binary signatures concatenate). */
async function detached(
  root: string,
  signers: Array<[SigningKey, { at?: string; expiresIn?: string }?]>,
): Promise<void> {
  const parts: Buffer[] = [];
  for (const [index, [key, when]] of signers.entries()) {
    const part = join(root, `part-${index}.gpg`);
    key.detach(join(root, 'SHA256SUMS'), part, false, when);
    parts.push(await readFile(part));
  }
  await writeFile(join(root, 'SHA256SUMS.gpg'), Buffer.concat(parts));
}

async function fetchWith(
  root: string,
  verification: VerificationSpec,
): Promise<{ result?: Awaited<ReturnType<typeof fetchInstaller>>; error?: Error; cache: string[]; log: string }> {
  const cacheDir = join(root, 'cache');
  const installer: ImageSpec['installer'] = {
    kind: 'netboot',
    linux: source(join(root, 'netboot/linux')),
    initrd: source(join(root, 'netboot/initrd.gz')),
  };
  const { ctx, reporter } = testContext(
    testSpec({ name: 'gpgv-test', outputDir: cacheDir, cacheDir, installer, verification }),
  );
  try {
    const result = await fetchInstaller(ctx);
    return { result, cache: await readdir(cacheDir), log: reporter.text() };
  } catch (error) {
    return { error: error as Error, cache: await readdir(cacheDir).catch(() => []), log: reporter.text() };
  }
}

const detachedSpec = (root: string, keyring: string): VerificationSpec => ({
  checksums: source(join(root, 'SHA256SUMS')),
  signature: source(join(root, 'SHA256SUMS.gpg')),
  keyring,
  names: {},
});

/** Refused at the fetch step, naming the signing key and gpgv's verdict; no installer file is cached. */
function assertRefused(run: Awaited<ReturnType<typeof fetchWith>>, key: SigningKey, verdict: string): void {
  assert.ok(run.error, `accepted: ${run.log}`);
  assert.ok(run.error.message.includes(key.fingerprint.slice(-16)), run.error.message);
  assert.ok(run.error.message.includes(`(${verdict})`), run.error.message);
  assert.match(run.error.message, /has no valid signature by a key of .*keyring\.gpg/);
  assert.doesNotMatch(run.log, /verified:/);
  assert.deepEqual(
    run.cache.filter((name) => !name.endsWith('.json')),
    [],
  );
}

describe('a signature counts only when gpgv says GOODSIG', () => {
  test('a clearsigned list by a key whose revocation is in the keyring: refused (REVKEYSIG)', async () => {
    const root = await mirror('revoked-clearsigned');
    const key = new SigningKey('Revoked Clearsigner');
    try {
      key.clearsign(join(root, 'SHA256SUMS'), join(root, 'SHA256SUMS.asc'));
      key.revoke();
      const run = await fetchWith(root, {
        checksums: source(join(root, 'SHA256SUMS.asc')),
        keyring: await keyringOf(root, [key]),
        names: {},
      });
      assertRefused(run, key, 'REVKEYSIG');
      assert.match(run.error?.message ?? '', /is by a revoked key \(REVKEYSIG\)/);
    } finally {
      key.dispose();
    }
  });

  test('a release file by a revoked key: refused (REVKEYSIG)', async () => {
    const root = await mirror('revoked-release');
    const key = new SigningKey('Revoked Release Signer');
    try {
      const listed = sha256(await readFile(join(root, 'SHA256SUMS'), 'utf8'));
      await writeFile(join(root, 'Release'), `Origin: Test\nSHA256:\n ${listed} 99 SHA256SUMS\n`);
      key.clearsign(join(root, 'Release'), join(root, 'InRelease'));
      key.revoke();
      const run = await fetchWith(root, {
        checksums: source(join(root, 'SHA256SUMS')),
        release: source(join(root, 'InRelease')),
        keyring: await keyringOf(root, [key]),
        names: {},
      });
      assertRefused(run, key, 'REVKEYSIG');
    } finally {
      key.dispose();
    }
  });

  test('a detached signature by a key that has since expired: refused (EXPKEYSIG)', async () => {
    const root = await mirror('expired-key');
    await detached(root, [[expired, { at: PAST }]]);
    const run = await fetchWith(root, detachedSpec(root, await keyringOf(root, [expired])));
    assertRefused(run, expired, 'EXPKEYSIG');
    assert.match(run.error?.message ?? '', /is by an expired key \(EXPKEYSIG\)/);
  });

  test('a signature that has expired: refused (EXPSIG), saying so rather than that gpgv failed', async () => {
    const root = await mirror('expired-signature');
    await detached(root, [[old, { at: PAST, expiresIn: '1d' }]]);
    const run = await fetchWith(root, detachedSpec(root, await keyringOf(root, [old])));
    assertRefused(run, old, 'EXPSIG');
    assert.match(run.error?.message ?? '', /has expired \(EXPSIG\)/);
  });

  test('one good and one revoked signature: taken on the good one alone, the revoked one named in a warning', async () => {
    const root = await mirror('good-and-revoked');
    const key = new SigningKey('Revoked Cosigner');
    try {
      await detached(root, [[good], [key]]);
      key.revoke();
      const run = await fetchWith(root, detachedSpec(root, await keyringOf(root, [good, key])));
      assert.equal(run.error, undefined, run.log);
      assert.deepEqual(run.result?.verification?.fingerprints, [good.fingerprint]);
      assert.deepEqual(run.result?.verification?.signers, [
        'Distribution Signer <distribution-signer@example.invalid>',
      ]);
      const warnings = run.log.split('\n').filter((line) => line.startsWith('warning:'));
      assert.equal(warnings.length, 1, run.log);
      assert.ok(warnings[0].includes(key.fingerprint.slice(-16)), warnings[0]);
      assert.match(warnings[0], /is by a revoked key \(REVKEYSIG\) and does not count/);
      assert.ok(
        !/verified: .*/.exec(run.log)?.[0].includes(key.fingerprint),
        'the record does not name the revoked key',
      );
    } finally {
      key.dispose();
    }
  });

  test('one good signature and one by a key the keyring lacks: taken on the good one, as apt takes it', async () => {
    const root = await mirror('good-and-unknown');
    await detached(root, [[good], [old]]);
    const run = await fetchWith(root, detachedSpec(root, await keyringOf(root, [good])));
    assert.equal(run.error, undefined, run.log);
    assert.deepEqual(run.result?.verification?.fingerprints, [good.fingerprint]);
    assert.match(
      run.log,
      /warning: .*SHA256SUMS: the signature by key [0-9A-F]{16} is by a key the keyring does not hold \(NO_PUBKEY\)/,
    );
  });

  test('an expired key and a revoked one, no good signature: refused, naming both', async () => {
    const root = await mirror('expired-and-revoked');
    const key = new SigningKey('Revoked Second');
    try {
      await detached(root, [[expired, { at: PAST }], [key]]);
      key.revoke();
      const run = await fetchWith(root, detachedSpec(root, await keyringOf(root, [expired, key])));
      assertRefused(run, expired, 'EXPKEYSIG');
      assertRefused(run, key, 'REVKEYSIG');
    } finally {
      key.dispose();
    }
  });
});
