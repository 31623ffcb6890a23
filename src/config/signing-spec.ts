import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from './usage-error.js';

/** A secret given as a file (the configuration, the command) or as its text (the action's secret inputs). */
export type SecretSource = { path: string } | { text: string };

/** The OpenPGP key that signs the build's SHA256SUMS (`signing-key`), and its passphrase. */
export interface SigningSpec {
  /** The secret key, ASCII-armoured or binary. */
  key: SecretSource;
  /** What unlocks a protected key: its first line is the passphrase. */
  passphrase?: SecretSource;
  /** How messages name the key: `file:3: [img] signing-key`, `Input 'signing-key'`. */
  where: string;
}

type Problem = (key: string, message: string) => UsageError;

/** A readable regular file named by a key, resolved. */
function readableFile(options: Record<string, string>, key: string, problem: Problem): string | undefined {
  const value = options[key]?.trim();
  if (value === undefined || value === '') return undefined;
  const path = resolve(value.startsWith('~/') ? `${process.env.HOME ?? ''}${value.slice(1)}` : value);
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw problem(key, `'${path}' does not exist or is not readable.`);
  }
  if (!statSync(path).isFile()) throw problem(key, `'${path}' is not a regular file.`);
  return path;
}

/**
 * `signing-key` and `signing-passphrase-file`: files that must be readable
 * now. Whether the key is a secret key that the passphrase unlocks is
 * checked with gpg before the build creates anything (supply-chain/sign.ts).
 */
export function resolveSigning(
  options: Record<string, string>,
  problem: Problem,
  where: (key: string) => string,
): SigningSpec | undefined {
  const key = readableFile(options, 'signing-key', problem);
  const passphrase = readableFile(options, 'signing-passphrase-file', problem);
  if (key === undefined) {
    if (passphrase !== undefined)
      throw problem('signing-passphrase-file', 'is set, but signing-key is not: name the secret key it unlocks.');
    return undefined;
  }
  return {
    key: { path: key },
    ...(passphrase === undefined ? {} : { passphrase: { path: passphrase } }),
    where: where('signing-key'),
  };
}

/** What no output may show of a signing key given as text: its passphrase and each line of the key's armour. */
export function signingSecrets(signing: SigningSpec | undefined): string[] {
  const textOf = (source: SecretSource | undefined): string | undefined =>
    source !== undefined && 'text' in source ? source.text : undefined;
  const key = textOf(signing?.key);
  const passphrase = textOf(signing?.passphrase)?.split(/\r?\n/)[0];
  const lines = (key ?? '')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length >= 4 && !line.startsWith('-----'));
  return passphrase ? [passphrase, ...lines] : lines;
}
