import { setTimeout as sleep } from 'node:timers/promises';
import type { InstallerSource } from '../config/image-spec.js';
import { formatDuration } from '../common/units.js';
import { AbortedError } from '../host/exec.js';
import { redactSecrets, secretVariants } from '../common/credentials.js';
import { isTransientHttpFailure } from './http-download.js';
import { describeRsyncFailure, isTransientRsyncFailure } from './rsync.js';

export const RETRY_ATTEMPTS = 4;
const RETRY_DELAY_ENV = 'IMAGE_FACTORY_RETRY_DELAY_MS';

/** Delay before retry `retry` (1, 2, 3): 1 s, 2 s, 4 s, or from IMAGE_FACTORY_RETRY_DELAY_MS as the base. */
export function retryDelayMs(retry: number): number {
  const configured = Number(process.env[RETRY_DELAY_ENV]);
  const base =
    Number.isFinite(configured) && configured >= 0 && process.env[RETRY_DELAY_ENV] !== '' ? configured : 1000;
  return base * 2 ** (retry - 1);
}

export interface RetryOptions {
  /** What is tried, as the warning before a retry names it: `image: downloading <uri>`. */
  what: string;
  /** Where that warning goes: `<what> failed (attempt 1 of 4): <reason>; retrying in 1.0 s`. */
  warn: (message: string) => void;
  isTransient: (error: unknown) => boolean;
  /** The reason a failed try gives in the warning (secrets removed). */
  describe: (error: unknown) => string;
  onAttempt?: (attempt: number) => void;
  signal?: AbortSignal;
  attempts?: number;
}

/**
 * Run `work` until it succeeds, fails for good, or has failed `attempts` times;
 * warn before each retry and back off. Every download and upload of a build
 * retries through here (by downloadWithRetries or rsyncWithRetries), so all
 * say the same about it.
 */
export async function withRetries<T>(work: () => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = options.attempts ?? RETRY_ATTEMPTS;
  for (let attempt = 1; ; attempt += 1) {
    options.onAttempt?.(attempt);
    try {
      return await work();
    } catch (error) {
      if (isAbort(error, options.signal) || attempt >= attempts || !options.isTransient(error)) throw error;
      const delayMs = retryDelayMs(attempt);
      options.warn(
        `${options.what} failed (attempt ${attempt} of ${attempts}): ${options.describe(error)}; retrying in ${formatDuration(delayMs)}`,
      );
      try {
        await sleep(delayMs, undefined, options.signal ? { signal: options.signal } : {});
      } catch {
        throw new AbortedError('interrupted while waiting to retry');
      }
    }
  }
}

export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return error instanceof AbortedError || signal?.aborted === true;
}

/** What a transfer's retries are told: the warning's target and the signal that stops them. */
export type TransferRetries = Pick<RetryOptions, 'warn' | 'signal' | 'onAttempt'>;

/**
 * One HTTP(S) download of `source` (`once`: a single try, which never retries
 * itself), retried while its failures are transient. The warning reads
 * `<label>downloading <uri> failed (attempt 1 of 4): <reason>; …`, without
 * the URI's password.
 */
export function downloadWithRetries<T>(
  source: InstallerSource,
  once: () => Promise<T>,
  options: TransferRetries & { label?: string },
): Promise<T> {
  const { label = '', ...rest } = options;
  return withRetries(once, {
    ...rest,
    what: `${label}downloading ${source.display}`,
    isTransient: isTransientHttpFailure,
    describe: (error) => failureReason(error, source),
  });
}

/** One rsync run, retried while its failures are transient; `secrets` are removed from the warning's reason. */
export async function rsyncWithRetries(
  run: () => Promise<unknown>,
  options: TransferRetries & { what: string; secrets: readonly string[] },
): Promise<void> {
  const { secrets, ...rest } = options;
  await withRetries(run, {
    ...rest,
    isTransient: isTransientRsyncFailure,
    describe: (error) => redactSecrets(describeRsyncFailure(error), secrets),
  });
}

/** Why a download of `source` failed, its causes included, without the URI's password. */
export function failureReason(error: unknown, source: InstallerSource): string {
  return redactSecrets(describeCauses(error), secretVariants(source.uri));
}

/** An error's message with those of its causes (`the connection closed …: socket hang up`). */
export function describeCauses(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const parts: string[] = [];
  for (let cause: unknown = error; cause instanceof Error && parts.length < 4; cause = cause.cause) {
    if (!parts.includes(cause.message)) parts.push(cause.message);
  }
  return parts.join(': ');
}
