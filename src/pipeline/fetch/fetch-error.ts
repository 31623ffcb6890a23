import type { InstallerSource } from '../../config/image-spec.js';
import { CommandError } from '../../host/command-error.js';
import { describeCauses } from '../../net/retry.js';
import { describeRsyncFailure } from '../../net/rsync.js';

export type InstallerKey = 'linux' | 'initrd' | 'image';

export class FetchError extends Error {
  constructor(
    readonly key: InstallerKey,
    /** The URI with any password replaced. */
    readonly display: string,
    readonly reason: string,
  ) {
    super(`Cannot fetch the installer ${key} from ${display}: ${reason}`);
    this.name = 'FetchError';
  }
}

/** A source with the SHA-256 it must have, and where that SHA-256 comes from when not from the configuration. */
export type Wanted = InstallerSource & { origin?: string };

export function mismatch(key: InstallerKey, source: Wanted, actual: string, what: string): FetchError {
  const from = source.origin ? ` (from ${source.origin})` : '';
  return new FetchError(
    key,
    source.display,
    `SHA-256 mismatch: expected ${source.sha256}${from}, got ${actual}; ${what}`,
  );
}

/** An error's message with those of its causes. */
export function describeError(error: unknown): string {
  return error instanceof CommandError ? describeRsyncFailure(error) : describeCauses(error);
}
