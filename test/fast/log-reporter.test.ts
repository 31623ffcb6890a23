import assert from 'node:assert/strict';
import { test } from 'node:test';
import { secretsOf } from '../../src/net/credentials.js';
import { LogReporter } from '../../src/pipeline/log-reporter.js';

test('LogReporter masks the configured passwords in every line', () => {
  const written: string[] = [];
  const reporter = new LogReporter('image-factory', (text) => written.push(text));
  reporter.mask(secretsOf(['rsync://up:pa%2Fss@host/images/', 'http://mirror:k3y@host/vmlinuz']));
  reporter.output('rsync: auth failed for up with pa/ss');
  reporter.command(['curl', 'http://mirror:k3y@host/vmlinuz']);
  assert.doesNotMatch(written.join(''), /pa\/ss|pa%2Fss|k3y/);
  assert.match(written[0], /INFO: {3}rsync: auth failed for up with \*\*\*\n$/);
});
