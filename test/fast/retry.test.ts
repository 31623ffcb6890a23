import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CommandError } from '../../src/host/command-error.js';
import { AbortedError } from '../../src/host/exec.js';
import { HttpStatusError, TransferError } from '../../src/net/http-download.js';
import {
  downloadWithRetries,
  isAbort,
  RETRY_ATTEMPTS,
  retryDelayMs,
  rsyncWithRetries,
  withRetries,
} from '../../src/net/retry.js';

process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '5';

class Flaky extends Error {}

describe('withRetries', () => {
  test('retries transient failures with back-off, warning before each retry, then succeeds', async () => {
    let calls = 0;
    const warnings: string[] = [];
    const attempts: number[] = [];
    const result = await withRetries(
      async () => {
        calls += 1;
        if (calls < 3) throw new Flaky(`drop ${calls}`);
        return 'done';
      },
      {
        isTransient: (error) => error instanceof Flaky,
        describe: (error) => (error as Error).message,
        what: 'downloading http://mirror.invalid/SHA256SUMS',
        warn: (message) => warnings.push(message),
        onAttempt: (attempt) => attempts.push(attempt),
      },
    );
    assert.equal(result, 'done');
    assert.deepEqual(warnings, [
      `downloading http://mirror.invalid/SHA256SUMS failed (attempt 1 of ${RETRY_ATTEMPTS}): drop 1; retrying in 0.0 s`,
      `downloading http://mirror.invalid/SHA256SUMS failed (attempt 2 of ${RETRY_ATTEMPTS}): drop 2; retrying in 0.0 s`,
    ]);
    assert.deepEqual(attempts, [1, 2, 3]);
  });

  test(`gives up after ${RETRY_ATTEMPTS} tries, and at once on a permanent failure`, async () => {
    let calls = 0;
    const options = {
      isTransient: (error: unknown) => error instanceof Flaky,
      describe: String,
      what: 'trying',
      warn: () => undefined,
    };
    await assert.rejects(
      withRetries(async () => {
        calls += 1;
        throw new Flaky('again');
      }, options),
      Flaky,
    );
    assert.equal(calls, RETRY_ATTEMPTS);
    calls = 0;
    await assert.rejects(
      withRetries(async () => {
        calls += 1;
        throw new Error('for good');
      }, options),
      /for good/,
    );
    assert.equal(calls, 1);
  });

  test('an abort while waiting to retry ends at once; an abort is never retried', async () => {
    process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '60000';
    try {
      const controller = new AbortController();
      const waiting = withRetries(
        async () => {
          setImmediate(() => controller.abort());
          throw new Flaky('drop');
        },
        { isTransient: () => true, describe: String, what: 'trying', warn: () => undefined, signal: controller.signal },
      );
      await assert.rejects(
        waiting,
        (error: unknown) => error instanceof AbortedError && /waiting to retry/.test(error.message),
      );
    } finally {
      process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '5';
    }
    let calls = 0;
    await assert.rejects(
      withRetries(
        async () => {
          calls += 1;
          throw new AbortedError('interrupted');
        },
        { isTransient: () => true, describe: String, what: 'trying', warn: () => undefined },
      ),
      AbortedError,
    );
    assert.equal(calls, 1);
  });

  test('retryDelayMs doubles from the base; isAbort knows an aborted signal', () => {
    process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '';
    try {
      assert.deepEqual([1, 2, 3].map(retryDelayMs), [1000, 2000, 4000]);
    } finally {
      process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '5';
    }
    const controller = new AbortController();
    assert.equal(isAbort(new Error('x'), controller.signal), false);
    controller.abort();
    assert.equal(isAbort(new Error('x'), controller.signal), true);
    assert.equal(isAbort(new AbortedError('x')), true);
  });
});

describe('downloads and rsync runs retry alike', () => {
  const source = {
    uri: 'https://u:s3cret@mirror.invalid/SHA256SUMS',
    display: 'https://u:***@mirror.invalid/SHA256SUMS',
    scheme: 'https',
    location: 'https://u:s3cret@mirror.invalid/SHA256SUMS',
  } as const;

  test('a download warns with its label, its URI without the password and the failure with its cause', async () => {
    const warnings: string[] = [];
    let calls = 0;
    const result = await downloadWithRetries(
      source,
      async () => {
        calls += 1;
        if (calls === 1) throw new TransferError('the connection closed early', { cause: new Error('s3cret reset') });
        return 'body';
      },
      { label: 'linux: ', warn: (message) => warnings.push(message) },
    );
    assert.equal(result, 'body');
    assert.deepEqual(warnings, [
      `linux: downloading https://u:***@mirror.invalid/SHA256SUMS failed (attempt 1 of ${RETRY_ATTEMPTS}): ` +
        'the connection closed early: *** reset; retrying in 0.0 s',
    ]);
  });

  test('a download that fails for good (HTTP 404) is tried once', async () => {
    let calls = 0;
    const failing = downloadWithRetries(
      source,
      async () => {
        calls += 1;
        throw new HttpStatusError(404, 'Not Found');
      },
      { warn: () => assert.fail('no retry, no warning') },
    );
    await assert.rejects(failing, HttpStatusError);
    assert.equal(calls, 1);
  });

  test('an rsync run retries a transient exit code and removes the secrets from the warning', async () => {
    const warnings: string[] = [];
    let calls = 0;
    await rsyncWithRetries(
      async () => {
        calls += 1;
        if (calls === 1)
          throw new CommandError(['rsync', 'x'], 12, null, ['error in rsync protocol data stream (s3cret)']);
      },
      { what: '[d] rsync', secrets: ['s3cret'], warn: (message) => warnings.push(message) },
    );
    assert.equal(calls, 2);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /^\[d\] rsync failed \(attempt 1 of \d\): rsync exited with code 12/);
    assert.match(warnings[0], /\(\*\*\*\)/);
    assert.doesNotMatch(warnings[0], /s3cret/);
  });
});
