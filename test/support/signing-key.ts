import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * An OpenPGP key made for a test (gpg, no passphrase, in its own GNUPGHOME):
 * it signs test data as a distribution signs its checksum lists, and its
 * public key is exported as a keyring file for gpgv.
 */
export class SigningKey {
  readonly home: string;
  readonly keyring: string;
  readonly fingerprint: string;

  constructor(name: string) {
    this.home = mkdtempSync(join(tmpdir(), 'signing-key-'));
    this.gpg([
      '--quick-gen-key',
      `${name} <${name.toLowerCase().replace(/\W+/g, '-')}@example.invalid>`,
      'ed25519',
      'sign',
      'never',
    ]);
    const colons = this.gpg(['--with-colons', '--list-keys']);
    this.fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(colons)?.[1] ?? '';
    this.keyring = join(this.home, 'public.gpg');
    writeFileSync(this.keyring, execFileSync('gpg', ['--homedir', this.home, '--batch', '--export']));
  }

  /** A detached signature over `file`: binary (`.gpg`) or ASCII-armoured (`.asc`). */
  detach(file: string, output: string, armour = false): void {
    this.gpg([...(armour ? ['--armor'] : []), '--output', output, '--detach-sign', file]);
  }

  /** `file` clearsigned into `output`. */
  clearsign(file: string, output: string): void {
    this.gpg(['--output', output, '--clearsign', file]);
  }

  dispose(): void {
    execFileSync('gpgconf', ['--homedir', this.home, '--kill', 'all']);
    rmSync(this.home, { recursive: true, force: true });
  }

  private gpg(args: string[]): string {
    return execFileSync(
      'gpg',
      ['--homedir', this.home, '--batch', '--yes', '--passphrase', '', '--pinentry-mode', 'loopback', ...args],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  }
}
