import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError } from '../host/exec.js';

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
  isTransient: (error: unknown) => boolean;
  describe: (error: unknown) => string;
  onRetry: (reason: string, attempt: number, delayMs: number) => void;
  onAttempt?: (attempt: number) => void;
  signal?: AbortSignal;
  attempts?: number;
}

/** Run `work` until it succeeds, fails for good, or has failed `attempts` times; back off between tries. */
export async function withRetries<T>(work: () => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = options.attempts ?? RETRY_ATTEMPTS;
  for (let attempt = 1; ; attempt += 1) {
    options.onAttempt?.(attempt);
    try {
      return await work();
    } catch (error) {
      if (isAbort(error, options.signal) || attempt >= attempts || !options.isTransient(error)) throw error;
      const delayMs = retryDelayMs(attempt);
      options.onRetry(options.describe(error), attempt, delayMs);
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
