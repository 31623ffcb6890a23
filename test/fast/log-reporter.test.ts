import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { secretsOf } from '../../src/common/credentials.js';
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

describe('the log file', () => {
  const work = mkdtempSync(join(tmpdir(), 'log-file-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  test('a symlink at its name is neither followed nor replaced: the log goes to a new name', () => {
    const target = join(work, 'victim');
    writeFileSync(target, 'precious\n');
    const path = join(work, 'img-2026-01-01.log');
    symlinkSync(target, path);
    const reporter = new LogReporter('image-factory', () => undefined);
    const used = reporter.openLogFile(path);
    reporter.info('hello');
    reporter.close();
    assert.equal(used, join(work, 'img-2026-01-01.1.log'));
    assert.equal(readFileSync(target, 'utf8'), 'precious\n');
    assert.ok(lstatSync(path).isSymbolicLink());
    assert.match(
      readFileSync(used, 'utf8'),
      /exists already \(or is a symlink\): logging to .*\.1\.log\n.*INFO: hello\n$/,
    );
    assert.equal(lstatSync(used).mode & 0o777, 0o644 & ~process.umask());
  });

  test("a re-run never truncates an earlier build's log of that day, nor a dangling symlink's target", () => {
    const path = join(work, 'done-2026-01-01.log');
    writeFileSync(path, 'the successful build\n');
    symlinkSync(join(work, 'nowhere'), join(work, 'done-2026-01-01.1.log'));
    const reporter = new LogReporter('image-factory', () => undefined);
    assert.equal(reporter.openLogFile(path), join(work, 'done-2026-01-01.2.log'));
    reporter.close();
    assert.equal(readFileSync(path, 'utf8'), 'the successful build\n');
    assert.ok(!existsSync(join(work, 'nowhere')), 'created through a dangling symlink');
  });

  test('lines said before the file is created (the checks) are held and written first', () => {
    const path = join(work, 'held.log');
    const reporter = new LogReporter('image-factory', () => undefined);
    reporter.holdLines();
    reporter.info('checking');
    assert.ok(!existsSync(path));
    reporter.openLogFile(path);
    reporter.info('building');
    reporter.close();
    assert.match(readFileSync(path, 'utf8'), /INFO: checking\n.*INFO: building\n$/);
  });
});
