import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SigningSpec } from '../config/signing-spec.js';
import { UsageError } from '../config/usage-error.js';
import type { BuildContext } from '../context/build-context.js';
import type { Host } from '../host/host.js';
import { verifySignature } from '../net/gpgv.js';

/**
 * SHA256SUMS signed with the host's gpg, as Debian and Ubuntu sign theirs: a
 * detached signature (`SHA256SUMS.gpg`) rather than a clearsigned list, so
 * that the list stays byte for byte what `sha256sum -c` reads, and gpgv
 * checks the pair (`gpgv --keyring KEY.gpg SHA256SUMS.gpg SHA256SUMS`).
 *
 * The key goes into a private, throw-away GNUPGHOME (mode 0700, in the
 * temporary folder, never the output folder), registered for undo and
 * removed with its gpg-agent once the signature is made. The key's text and
 * the passphrase reach gpg on its standard input, never its command line;
 * nothing of them is logged.
 */

/** What a key is not, for a signature: said to the user before the build creates anything. */
export class SigningKeyError extends Error {}

/** gpg's error codes (libgpg-error) that say the passphrase is missing or wrong. */
const NO_PASSPHRASE = 177;
const BAD_PASSPHRASE = 11;

/** gpg in one throw-away home. */
class GpgHome {
  constructor(
    private readonly host: Host,
    readonly dir: string,
    private readonly signal?: AbortSignal,
  ) {}

  run(args: string[], options: { input?: string; quiet?: boolean } = {}) {
    return this.host.run(['gpg', '--homedir', this.dir, '--batch', '--no-tty', ...args], {
      allowFailure: true,
      captureStdout: true,
      quiet: options.quiet,
      ...(options.input === undefined ? {} : { input: options.input }),
      ...(this.signal ? { signal: this.signal } : {}),
    });
  }

  /** Import the secret key; its fingerprint (the primary key's). */
  async importKey(signing: SigningSpec): Promise<string> {
    const source = signing.key;
    const imported =
      'path' in source
        ? await this.run(['--import', source.path])
        : await this.run(['--import'], { input: source.text });
    if (!this.host.live) return '';
    const listed = await this.run(['--with-colons', '--list-secret-keys'], { quiet: true });
    const fingerprint = /^sec:(?:[^\n]*)\nfpr:+([0-9A-F]{40}):/m.exec(listed.stdout)?.[1];
    if (fingerprint) return fingerprint;
    const what = 'path' in source ? source.path : 'the key given';
    throw new SigningKeyError(
      imported.exitCode === 0
        ? `${signing.where}: ${what} holds no OpenPGP secret key (a public key only?); export the secret key ` +
            `with 'gpg --armor --export-secret-keys FINGERPRINT'.`
        : `${signing.where}: ${what} is not an OpenPGP key gpg can import: ${imported.lastLines.slice(-2).join(' / ')}`,
    );
  }

  /** A detached signature of `data` into `output`, by the key's fingerprint. */
  async detachSign(signing: SigningSpec, fingerprint: string, data: string, output: string): Promise<void> {
    const passphrase = await passphraseOf(signing);
    const result = await this.run(
      [
        '--status-fd',
        '1',
        '--pinentry-mode',
        'loopback',
        '--passphrase-fd',
        '0',
        ...(fingerprint ? ['--local-user', fingerprint] : []),
        '--digest-algo',
        'SHA512',
        '--output',
        output,
        '--detach-sign',
        data,
      ],
      { input: `${passphrase}\n` },
    );
    if (!this.host.live || result.exitCode === 0) return;
    const code = Number(/^\[GNUPG:\] FAILURE sign (\d+)/m.exec(result.stdout)?.[1] ?? 0) & 0xffff;
    if (code === NO_PASSPHRASE || (code === BAD_PASSPHRASE && passphrase === '')) {
      throw new SigningKeyError(
        `${signing.where}: the key ${fingerprint} is protected by a passphrase, and none is given: ` +
          `set signing-passphrase-file (or the action's signing-passphrase input).`,
      );
    }
    if (code === BAD_PASSPHRASE)
      throw new SigningKeyError(`${signing.where}: the passphrase given does not unlock the key ${fingerprint}.`);
    throw new Error(`gpg could not sign ${data} (exit ${result.exitCode}): ${result.lastLines.slice(-2).join(' / ')}`);
  }

  /** The public key, as a keyring file gpgv reads. */
  async exportPublic(fingerprint: string, keyring: string): Promise<void> {
    await this.run(['--yes', '--output', keyring, '--export', ...(fingerprint ? [fingerprint] : [])]);
  }

  /** gpg-agent stopped, so the folder can go. */
  async stopAgent(): Promise<void> {
    await this.host.run(['gpgconf', '--homedir', this.dir, '--kill', 'all'], { allowFailure: true, quiet: true });
  }
}

/** The passphrase's first line, from the file or the text ('' without one). */
async function passphraseOf(signing: SigningSpec): Promise<string> {
  const source = signing.passphrase;
  if (source === undefined) return '';
  const text = 'path' in source ? await readFile(source.path, 'utf8') : source.text;
  return text.split(/\r?\n/)[0];
}

/**
 * Before the build creates anything: the key is a secret key, and the
 * passphrase (or its absence) lets gpg sign with it. A UsageError otherwise.
 * Its fingerprint.
 */
export async function checkSigningKey(host: Host, signing: SigningSpec): Promise<string> {
  const dir = await host.makeTempDir(join(tmpdir(), 'image-factory-gnupg.'));
  const home = new GpgHome(host, dir);
  try {
    const fingerprint = await home.importKey(signing);
    const probe = join(dir, 'probe');
    await host.writeFile(probe, 'image-factory signing-key check\n', 0o600);
    await home.detachSign(signing, fingerprint, probe, `${probe}.gpg`);
    return fingerprint;
  } catch (error) {
    if (error instanceof SigningKeyError) throw new UsageError(error.message);
    throw error;
  } finally {
    await home.stopAgent();
    await host.remove(dir);
  }
}

/**
 * Sign `sums` into `signature` (both in the staging folder) and check the
 * signature with gpgv against the key's public half; the key's fingerprint.
 */
export async function signChecksumList(
  ctx: BuildContext,
  signing: SigningSpec,
  sums: string,
  signature: string,
): Promise<string> {
  const { host, cleanup } = ctx;
  const dir = await host.makeTempDir(join(tmpdir(), 'image-factory-gnupg.'));
  const entry = cleanup.register({ kind: 'path', path: dir });
  const home = new GpgHome(host, dir, ctx.signal);
  try {
    const fingerprint = await home.importKey(signing);
    await home.detachSign(signing, fingerprint, sums, signature);
    const keyring = join(dir, 'public.gpg');
    await home.exportPublic(fingerprint, keyring);
    await verifySignature({ host, keyring, signature, data: sums, what: 'the new SHA256SUMS', signal: ctx.signal });
    return fingerprint;
  } finally {
    await home.stopAgent();
    await cleanup.release(entry);
  }
}
