import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CommandError } from '../../src/host/command-error.js';
import {
  describeRsyncFailure,
  isRsyncProgressLine,
  isTransientRsyncFailure,
  rsyncArgv,
  rsyncEndpoint,
} from '../../src/net/rsync.js';

const failure = (code: number | null, ...lines: string[]): CommandError =>
  new CommandError(['rsync'], code, null, lines);

describe('rsync helpers', () => {
  test('argv: the user’s arguments first, then ours, then the operands', () => {
    assert.deepEqual(rsyncArgv({ flags: ['--times'], operands: ['rsync://h/m/f', '/cache/f'] }), [
      'rsync',
      '--no-motd',
      '--times',
      '--timeout=300',
      'rsync://h/m/f',
      '/cache/f',
    ]);
    assert.deepEqual(
      rsyncArgv({ userArgs: ['-q'], flags: ['--checksum'], after: ['--sparse'], operands: ['a', 'b'] }),
      ['rsync', '-q', '--no-motd', '--checksum', '--timeout=300', '--sparse', 'a', 'b'],
    );
  });

  test('an endpoint with a password: none in the URI, RSYNC_PASSWORD set, the secrets known', () => {
    const endpoint = rsyncEndpoint('rsync://up:s%40cret@127.0.0.1:873/images/');
    assert.equal(endpoint.uri, 'rsync://up@127.0.0.1:873/images/');
    assert.equal(endpoint.env.RSYNC_PASSWORD, 's@cret');
    assert.deepEqual(new Set(endpoint.secrets), new Set(['s%40cret', 's@cret']));
    const plain = rsyncEndpoint('builder@images.example:/srv/images/');
    assert.equal(plain.env, process.env);
    assert.deepEqual(plain.secrets, []);
  });

  test('transient and permanent failures', () => {
    assert.equal(isTransientRsyncFailure(failure(10, 'rsync: read error: Connection reset by peer (104)')), true);
    assert.equal(
      isTransientRsyncFailure(failure(23, 'rsync: link_stat "/x" failed: No such file or directory (2)')),
      false,
    );
    assert.equal(isTransientRsyncFailure(failure(5, 'rsync: failed to connect to h: Connection refused (111)')), true);
    assert.equal(isTransientRsyncFailure(failure(5, '@ERROR: auth failed on module images')), false);
    assert.equal(isTransientRsyncFailure(failure(5, '@ERROR: max connections (2) reached -- try again later')), true);
    assert.equal(isTransientRsyncFailure(failure(null)), false);
    assert.equal(isTransientRsyncFailure(new Error('x')), false);
  });

  test('a failure in words, without the progress meter', () => {
    assert.equal(
      describeRsyncFailure(
        failure(
          23,
          '  1,048,576  50%  1.00MB/s  0:00:01',
          'rsync error: some files could not be transferred (code 23)',
        ),
      ),
      'rsync exited with code 23: rsync error: some files could not be transferred (code 23)',
    );
    assert.equal(isRsyncProgressLine('  12,345,678  45%  11.2MB/s  0:00:03'), true);
    assert.equal(isRsyncProgressLine('sending incremental file list'), false);
  });
});
