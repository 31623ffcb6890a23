import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SystemHost } from '../../src/host/system-host.js';
import { RecordingReporter } from '../support/build-context.js';

const work = await mkdtemp(join(tmpdir(), 'system-host-'));
after(() => rm(work, { recursive: true, force: true }));
const host = new SystemHost(new RecordingReporter());

describe("SystemHost's file operations for a cache", () => {
  test('makeDirs gives each folder it makes the mode asked for, whatever the umask, and leaves one that exists', async () => {
    await mkdir(join(work, 'kept'), { mode: 0o700 });
    const umask = process.umask(0o077);
    try {
      await host.makeDirs(join(work, 'kept', 'a', 'b'), 0o755);
    } finally {
      process.umask(umask);
    }
    assert.equal((await stat(join(work, 'kept', 'a'))).mode & 0o777, 0o755);
    assert.equal((await stat(join(work, 'kept', 'a', 'b'))).mode & 0o777, 0o755);
    assert.equal((await stat(join(work, 'kept'))).mode & 0o777, 0o700);
    await host.makeDirs(join(work, 'kept', 'a', 'b'), 0o755);
  });

  test('replace renames over an existing file; setTimes sets the times in milliseconds', async () => {
    const [from, to] = [join(work, 'new.partial'), join(work, 'file')];
    await writeFile(from, 'new');
    await writeFile(to, 'old');
    const mtimeMs = Date.UTC(2020, 0, 2, 3, 4, 5, 500);
    await host.setTimes(from, mtimeMs, mtimeMs);
    await host.replace(from, to);
    assert.equal(await readFile(to, 'utf8'), 'new');
    assert.ok(Math.abs((await stat(to)).mtimeMs - mtimeMs) < 1);
    await assert.rejects(stat(from), { code: 'ENOENT' });
  });
});
