import { accessSync, constants, openSync, readSync, closeSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { InstallerSource } from './image-spec.js';
import type { UsageError } from './usage-error.js';

/**
 * How the installer files are verified: against a checksum list, which is
 * vouched for by a signed release file that lists its hash (Debian), by a
 * detached signature (Ubuntu, openSUSE), by its own clear signature (Fedora,
 * the Enterprise Linux CHECKSUM files), or by nothing (a keyring-less list).
 */
export interface VerificationSpec {
  checksums: InstallerSource;
  /** A detached signature over `checksums`. */
  signature?: InstallerSource;
  /** A clearsigned release file listing the SHA-256 of `checksums`. */
  release?: InstallerSource;
  /** Absolute path of the keyring gpgv checks the signature with. */
  keyring?: string;
  /** Names in the checksum list that are configured rather than derived from the URLs. */
  names: { linux?: string; initrd?: string; image?: string };
}

type Problem = (key: string, message: string) => UsageError;
type ParseSource = (uri: string, fail: (message: string) => UsageError) => InstallerSource;

const ARMOURED = '-----BEGIN PGP';

/** The verification keys of an image's section, checked; undefined when none is set. */
export function resolveVerification(
  options: Record<string, string>,
  problem: Problem,
  parseSource: ParseSource,
): VerificationSpec | undefined {
  const value = (key: string): string | undefined => options[key]?.trim() || undefined;
  const checksums = value('installer-checksums');
  const others = ['installer-signature', 'installer-release', 'installer-keyring'].filter((key) => value(key));
  if (checksums === undefined) {
    if (others.length) throw problem(others[0], `needs 'installer-checksums', the checksum list it vouches for.`);
    return undefined;
  }
  const source = (key: string): InstallerSource | undefined => {
    const uri = value(key);
    if (uri === undefined) return undefined;
    const parsed = parseSource(uri, (message) => problem(key, message));
    if (parsed.scheme === 'rsync') throw problem(key, `'${parsed.display}': use http:, https:, file: or a path.`);
    return parsed;
  };
  const spec: VerificationSpec = {
    checksums: source('installer-checksums') as InstallerSource,
    signature: source('installer-signature'),
    release: source('installer-release'),
    keyring: resolveKeyring(value('installer-keyring'), problem),
    names: {
      linux: value('linux_checksum_name'),
      initrd: value('initrd_checksum_name'),
      image: value('installer_image_checksum_name'),
    },
  };
  if (spec.signature && spec.release)
    throw problem('installer-release', `set 'installer-signature' or 'installer-release', not both.`);
  if ((spec.signature || spec.release) && !spec.keyring) {
    const key = spec.signature ? 'installer-signature' : 'installer-release';
    throw problem(key, `a signature is checked against 'installer-keyring', which is not set.`);
  }
  return spec;
}

/** The keyring's absolute path; it must be a readable binary keyring (gpgv reads no armour). */
function resolveKeyring(path: string | undefined, problem: Problem): string | undefined {
  if (path === undefined) return undefined;
  const absolute = resolve(path.startsWith('~/') ? `${process.env.HOME ?? ''}${path.slice(1)}` : path);
  try {
    accessSync(absolute, constants.R_OK);
    if (!statSync(absolute).isFile()) throw new Error('not a file');
  } catch {
    throw problem(
      'installer-keyring',
      `the keyring '${absolute}' does not exist or is not a readable file${keyringHint(absolute)}.`,
    );
  }
  if (startsWith(absolute, ARMOURED)) {
    throw problem(
      'installer-keyring',
      `'${absolute}' is ASCII-armoured, which gpgv does not read; convert it with 'gpg --dearmor < KEY > KEYRING.gpg'.`,
    );
  }
  return absolute;
}

function keyringHint(path: string): string {
  if (path.startsWith('/usr/share/keyrings/debian-archive-'))
    return ' (on Debian and Ubuntu: apt-get install debian-archive-keyring; on Fedora: dnf install debian-keyring)';
  return '';
}

function startsWith(path: string, text: string): boolean {
  const buffer = Buffer.alloc(text.length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buffer, 0, text.length, 0);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('latin1') === text;
}
