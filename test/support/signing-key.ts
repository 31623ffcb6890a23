import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * An OpenPGP key made for a test (gpg, no passphrase, in its own GNUPGHOME):
 * it signs test data as a distribution signs its checksum lists, and its
 * public key is exported as a keyring file for gpgv. A key made in the past
 * (gpg's faked system time) with a lifetime has expired by now; `revoke`
 * puts its revocation into the keyring.
 */
export class SigningKey {
  readonly home: string;
  readonly keyring: string;
  readonly fingerprint: string;

  private readonly passphrase: string;

  /**
   * `made`: when the key was made (gpg's `--faked-system-time`, `20200101T000000`); `expires`: its lifetime (`1y`);
   * `passphrase`: the key is protected by it.
   */
  constructor(name: string, options: { made?: string; expires?: string; passphrase?: string } = {}) {
    this.home = mkdtempSync(join(tmpdir(), 'signing-key-'));
    this.passphrase = options.passphrase ?? '';
    this.gpg(
      [
        '--quick-gen-key',
        `${name} <${name.toLowerCase().replace(/\W+/g, '-')}@example.invalid>`,
        'ed25519',
        'sign',
        options.expires ?? 'never',
      ],
      options.made,
    );
    const colons = this.gpg(['--with-colons', '--list-keys']);
    this.fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(colons)?.[1] ?? '';
    this.keyring = join(this.home, 'public.gpg');
    this.exportKeyring();
  }

  /**
   * A detached signature over `file`: binary (`.gpg`) or ASCII-armoured (`.asc`);
   * `at` signs at that time, `expiresIn` makes a signature that expires (`1d`).
   */
  detach(file: string, output: string, armour = false, when: SigningTime = {}): void {
    this.gpg([...(armour ? ['--armor'] : []), ...expiry(when), '--output', output, '--detach-sign', file], when.at);
  }

  /** `file` clearsigned into `output`. */
  clearsign(file: string, output: string, when: SigningTime = {}): void {
    this.gpg([...expiry(when), '--output', output, '--clearsign', file], when.at);
  }

  /** Revoke the key with the certificate gpg made beside it, and put the revocation into the keyring. */
  revoke(): void {
    const certificate = readFileSync(join(this.home, 'openpgp-revocs.d', `${this.fingerprint}.rev`), 'utf8');
    // gpg writes the certificate with its armour line commented out, against an import by mistake.
    const armoured = join(this.home, 'revocation.asc');
    writeFileSync(armoured, certificate.replace(/^:-----BEGIN/m, '-----BEGIN'));
    this.gpg(['--import', armoured]);
    this.exportKeyring();
  }

  /** The secret key into `output`, ASCII-armoured or binary, as `gpg --export-secret-keys` writes it. */
  exportSecret(output: string, armour = true): void {
    this.gpg([...(armour ? ['--armor'] : []), '--output', output, '--export-secret-keys', this.fingerprint]);
  }

  dispose(): void {
    execFileSync('gpgconf', ['--homedir', this.home, '--kill', 'all']);
    rmSync(this.home, { recursive: true, force: true });
  }

  private exportKeyring(): void {
    writeFileSync(this.keyring, execFileSync('gpg', ['--homedir', this.home, '--batch', '--export']));
  }

  private gpg(args: string[], at?: string): string {
    const time = at === undefined ? [] : ['--faked-system-time', at];
    return execFileSync(
      'gpg',
      [
        ...['--homedir', this.home, '--batch', '--yes', '--passphrase', this.passphrase, '--pinentry-mode', 'loopback'],
        ...time,
        ...args,
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  }
}

/** When a signature is made (gpg's `--faked-system-time`) and how long it is valid. */
export interface SigningTime {
  at?: string;
  expiresIn?: string;
}

function expiry(when: SigningTime): string[] {
  return when.expiresIn === undefined ? [] : ['--default-sig-expire', when.expiresIn];
}
