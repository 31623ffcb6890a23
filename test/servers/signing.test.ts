import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SigningSpec } from '../../src/config/signing-spec.js';
import { specSecrets } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import { SystemHost } from '../../src/host/system-host.js';
import { checkSigningKey, signChecksumList } from '../../src/supply-chain/sign.js';
import { RecordingReporter, testContext, testSpec } from '../support/build-context.js';
import { runMain } from '../support/in-process-cli.js';
import { SigningKey } from '../support/signing-key.js';

/**
 * SHA256SUMS signed with the host's gpg (keys made by gpg in the test, one
 * protected by a passphrase) and checked with gpgv as a user checks it;
 * nothing of the secret key or its passphrase in the log or beside the files.
 */

const PASSPHRASE = 'correct horse battery staple';
let work: string;
let plain: SigningKey;
let protectedKey: SigningKey;
const files: Record<string, string> = {};

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'signing-'));
  plain = new SigningKey('Image Builder');
  protectedKey = new SigningKey('Protected Builder', { passphrase: PASSPHRASE });
  files.plainArmoured = join(work, 'plain.asc');
  plain.exportSecret(files.plainArmoured);
  files.plainBinary = join(work, 'plain.gpg');
  plain.exportSecret(files.plainBinary, false);
  files.protected = join(work, 'protected.asc');
  protectedKey.exportSecret(files.protected);
  files.passphrase = join(work, 'passphrase');
  await writeFile(files.passphrase, `${PASSPHRASE}\n`, { mode: 0o600 });
  files.wrongPassphrase = join(work, 'wrong');
  await writeFile(files.wrongPassphrase, 'not it\n', { mode: 0o600 });
  files.notAKey = join(work, 'not-a-key.asc');
  await writeFile(files.notAKey, 'hello\n');
});
after(async () => {
  plain.dispose();
  protectedKey.dispose();
  await rm(work, { recursive: true, force: true });
});

const gpgv = (keyring: string, signature: string, data: string): number | null =>
  spawnSync('gpgv', ['--keyring', keyring, signature, data], { stdio: 'ignore' }).status;

/** The folders gpg homes are made in that this build left behind. */
async function gnupgHomes(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((name) => name.startsWith('image-factory-gnupg.'));
}

/** The base64 lines of an armoured secret key: what must appear nowhere else. */
async function keyLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter((line) => line.length >= 16 && !line.startsWith('-----') && !line.includes(':'));
}

async function signIn(
  name: string,
  signing: SigningSpec,
): Promise<{ dir: string; sums: string; signature: string; fingerprint: string; log: string }> {
  const dir = await mkdtemp(join(work, `${name}-`));
  const sums = join(dir, 'img-2026-01-01.SHA256SUMS');
  const signature = `${sums}.gpg`;
  await writeFile(sums, `${'a'.repeat(64)}  img-2026-01-01.qcow2\n${'b'.repeat(64)}  img-2026-01-01.cdx.json\n`);
  const { ctx, reporter } = testContext(testSpec({ outputDir: dir, signing }));
  const before = await gnupgHomes();
  const fingerprint = await signChecksumList(ctx, signing, sums, signature);
  assert.deepEqual(ctx.cleanup.pending(), [], 'the gpg home is undone');
  assert.deepEqual(await gnupgHomes(), before, 'no gpg home is left in the temporary folder');
  return { dir, sums, signature, fingerprint, log: reporter.text() };
}

describe('a signed SHA256SUMS', () => {
  test('an armoured key file: gpgv verifies the detached signature with the public key; a changed byte fails it', async () => {
    const signed = await signIn('armoured', { key: { path: files.plainArmoured }, where: 'signing-key' });
    assert.equal(signed.fingerprint, plain.fingerprint);
    assert.equal(gpgv(plain.keyring, signed.signature, signed.sums), 0);
    assert.notEqual(gpgv(protectedKey.keyring, signed.signature, signed.sums), 0, 'another key does not verify it');
    const text = await readFile(signed.sums);
    text[3] ^= 1;
    await writeFile(signed.sums, text);
    assert.notEqual(gpgv(plain.keyring, signed.signature, signed.sums), 0, 'a changed byte fails gpgv');
    assert.deepEqual((await readdir(signed.dir)).sort(), [
      'img-2026-01-01.SHA256SUMS',
      'img-2026-01-01.SHA256SUMS.gpg',
    ]);
    assert.match(signed.log, /--detach-sign/);
  });

  test('a binary key file signs too', async () => {
    const signed = await signIn('binary', { key: { path: files.plainBinary }, where: 'signing-key' });
    assert.equal(gpgv(plain.keyring, signed.signature, signed.sums), 0);
  });

  test('a protected key given as text with its passphrase: signed, and neither reaches the log or the folder', async () => {
    const armour = await readFile(files.protected, 'utf8');
    const signing: SigningSpec = {
      key: { text: armour },
      passphrase: { text: PASSPHRASE },
      where: "Input 'signing-key'",
    };
    const signed = await signIn('text', signing);
    assert.equal(signed.fingerprint, protectedKey.fingerprint);
    assert.equal(gpgv(protectedKey.keyring, signed.signature, signed.sums), 0);
    const lines = await keyLines(files.protected);
    assert.ok(lines.length > 3);
    const written = [signed.log, ...(await Promise.all([signed.sums, signed.signature].map((f) => readFile(f))))].map(
      (content) => content.toString('latin1'),
    );
    for (const content of written) {
      assert.ok(!content.includes(PASSPHRASE), 'the passphrase is nowhere');
      for (const line of lines) assert.ok(!content.includes(line), 'no line of the secret key is anywhere');
    }
    // What the front doors mask: the passphrase and every line of the key's armour.
    const secrets = specSecrets(testSpec({ outputDir: work, signing }));
    assert.ok(secrets.includes(PASSPHRASE));
    for (const line of lines) assert.ok(secrets.includes(line));
  });

  test('a protected key file with a passphrase file signs', async () => {
    const signed = await signIn('file', {
      key: { path: files.protected },
      passphrase: { path: files.passphrase },
      where: 'signing-key',
    });
    assert.equal(gpgv(protectedKey.keyring, signed.signature, signed.sums), 0);
  });
});

describe('a signing key that cannot sign is bad input, found before the build creates anything', () => {
  const host = new SystemHost(new RecordingReporter());
  const check = (signing: Omit<SigningSpec, 'where'>): Promise<string> =>
    checkSigningKey(host, { ...signing, where: '/etc/x.conf:4: [img] signing-key' });
  const refused = (pattern: RegExp) => (error: unknown) =>
    error instanceof UsageError && pattern.test(error.message) && error.message.startsWith('/etc/x.conf:4: ');

  test('a usable key: its fingerprint, and no gpg home left', async () => {
    const before = await gnupgHomes();
    assert.equal(await check({ key: { path: files.plainArmoured } }), plain.fingerprint);
    assert.equal(
      await check({ key: { path: files.protected }, passphrase: { path: files.passphrase } }),
      protectedKey.fingerprint,
    );
    assert.deepEqual(await gnupgHomes(), before);
  });

  test('a public key', async () => {
    await assert.rejects(check({ key: { path: plain.keyring } }), refused(/holds no OpenPGP secret key/));
  });

  test('a file that is no key', async () => {
    await assert.rejects(check({ key: { path: files.notAKey } }), refused(/is not an OpenPGP key gpg can import/));
  });

  test('a protected key with no passphrase', async () => {
    await assert.rejects(
      check({ key: { path: files.protected } }),
      refused(/is protected by a passphrase, and none is given: set signing-passphrase-file/),
    );
  });

  test('a protected key with the wrong passphrase', async () => {
    await assert.rejects(
      check({ key: { path: files.protected }, passphrase: { path: files.wrongPassphrase } }),
      refused(/the passphrase given does not unlock the key/),
    );
  });

  test('the command exits 2 and the output folder stays empty', async () => {
    const output = await mkdtemp(join(work, 'command-'));
    const config = join(work, 'image.conf');
    await writeFile(config, `[img]\ninstaller_image = ${files.notAKey}\nsigning-key = ${plain.keyring}\n`);
    const run = await runMain(['--output-dir', output, 'img'], { IMAGE_FACTORY_CONFIG: config });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /image\.conf:3: \[img\] signing-key: .* holds no OpenPGP secret key/);
    assert.deepEqual(await readdir(output), []);
  });
});
