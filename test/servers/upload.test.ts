import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { ImageSpec, UploadDestination } from '../../src/config/image-spec.js';
import { AbortedError } from '../../src/host/exec.js';
import type { BuildContext } from '../../src/context/build-context.js';
import type { Artifact } from '../../src/pipeline/artifacts.js';
import { UploadError, uploadFailure, uploadImage } from '../../src/pipeline/upload.js';
import { RecordingReporter, testContext, testSpec } from '../support/build-context.js';
import { freePort, startRsyncDaemon } from '../support/rsync-daemon.js';
import { startSshd } from '../support/sshd.js';

const run = promisify(execFile);
process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '20';

/** A destination as the configuration makes it: post-upload commands split on spaces after `${image}` is set. */
function destination(name: string, target: string, args: string[] = [], postUpload: string[] = []): UploadDestination {
  return {
    name,
    type: 'rsync',
    target,
    args,
    postUploadCommands: (image) =>
      postUpload.map((command) =>
        command
          .replaceAll('${image}', image)
          .split(' ')
          .filter((word) => word.trim() !== ''),
      ),
  };
}

function context(
  uploads: UploadDestination[],
  options: { recording?: true; signal?: AbortSignal; upload?: boolean; format?: ImageSpec['format'] } = {},
): { ctx: BuildContext; reporter: RecordingReporter } {
  const spec = testSpec({
    name: 'golden',
    stem: 'golden-2026-01-01',
    outputDir: work,
    cacheDir: join(work, 'cache'),
    format: options.format ?? 'qcow2',
    upload: options.upload ?? true,
    uploads,
  });
  return testContext(spec, options);
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

let work: string;
let image: string;
let checksum: string;
let imageData: Buffer;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'upload-test-'));
  imageData = randomBytes(3 << 20);
  image = join(work, 'golden-2026-01-01.qcow2');
  checksum = `${image}.sha256sum`;
  await writeFile(image, imageData);
  await writeFile(checksum, `${sha256(imageData)}  ${basename(image)}\n`);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function folder(name: string): Promise<string> {
  const path = join(work, name);
  await mkdir(path, { recursive: true });
  return path;
}

async function script(name: string, body: string): Promise<string> {
  const path = join(work, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** Both files on the target, whole: what `sha256sum -c` on the target says. */
async function assertUploaded(dir: string): Promise<void> {
  assert.deepEqual(await readFile(join(dir, basename(image))), imageData);
  assert.equal(await readFile(join(dir, basename(checksum)), 'utf8'), await readFile(checksum, 'utf8'));
  const { stdout } = await run('sha256sum', ['-c', basename(checksum)], { cwd: dir });
  assert.equal(stdout.trim(), `${basename(image)}: OK`);
}

function withEnv<T>(name: string, value: string, work: () => Promise<T>): Promise<T> {
  const saved = process.env[name];
  process.env[name] = value;
  return work().finally(() => {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  });
}

/** An image and its checksum file, as the artifact table has them. */
const imageAndChecksum = (path: string, sum = `${path}.sha256sum`): Artifact[] => [
  { role: 'image', format: 'qcow2', final: path },
  { role: 'image-checksum', format: 'qcow2', final: sum },
];

/** An upload where a destination failed: every outcome, and the build's error for them. */
async function failedUpload(
  ctx: Parameters<typeof uploadImage>[0],
  files: Artifact[],
): Promise<{ outcomes: Awaited<ReturnType<typeof uploadImage>>; error: UploadError }> {
  const outcomes = await uploadImage(ctx, files);
  const error = uploadFailure(outcomes);
  assert.ok(error instanceof UploadError, 'expected a destination to fail');
  return { outcomes, error };
}

describe('uploadImage', () => {
  test('with the reports: the image, the reports, its checksum and the checksum list last, which sha256sum -c accepts on the target', async (t) => {
    const target = await folder('with-reports');
    // In the table's order, which the upload keeps whatever order it is given.
    const reports: Artifact[] = [];
    const lines = [`${sha256(imageData)}  ${basename(image)}`];
    for (const [role, name] of [
      ['sbom', 'cdx.json'],
      ['packages', 'packages'],
      ['manifest', 'manifest.json'],
    ] as const) {
      const path = join(work, `golden-2026-01-01.${name}`);
      await writeFile(path, `report ${name}\n`);
      reports.push({ role, final: path });
      lines.push(`${sha256(`report ${name}\n`)}  ${basename(path)}`);
    }
    const sums = join(work, 'golden-2026-01-01.SHA256SUMS');
    await writeFile(sums, `${lines.join('\n')}\n`);
    const daemon = await startRsyncDaemon(t, { images: { path: target } });
    const { ctx, reporter } = context([destination('mirror', daemon.url('images'))]);

    const outcomes = await uploadImage(ctx, [
      { role: 'sums', final: sums },
      ...reports,
      ...imageAndChecksum(image, checksum),
    ]);

    assert.equal(outcomes[0].ok, true, outcomes[0].error);
    assert.equal(outcomes[0].attempts, 7, 'six files and the verification: one run each');
    const { stdout } = await run('sha256sum', ['-c', basename(sums)], { cwd: target });
    assert.equal(stdout.trim().split('\n').length, 4);
    await assertUploaded(target);
    const sent = reporter.lines.filter((line) => line.startsWith('command: rsync') && !line.includes('--dry-run'));
    assert.deepEqual(
      sent.map((line) => basename(line.split(' ').at(-2) ?? '')),
      [
        basename(image),
        ...['manifest.json', 'packages', 'cdx.json'].map((name) => `golden-2026-01-01.${name}`),
        basename(checksum),
        basename(sums),
      ],
    );
    assert.match(
      reporter.text(),
      /uploaded and verified golden-2026-01-01\.qcow2, golden-2026-01-01\.manifest\.json, .* and golden-2026-01-01\.SHA256SUMS on /,
    );
  });

  test('sends the image first and its checksum file last, each whole, and verifies both', async (t) => {
    const target = await folder('ordered');
    const snapshots = join(work, 'ordered.snapshots');
    // After every connection the daemon lists what the module holds, with digests.
    const snapshot = await script(
      'snapshot.sh',
      `{ echo "--- snapshot"; cd "$RSYNC_MODULE_PATH" && for f in *; do [ -f "$f" ] && sha256sum "$f"; done; } >> ${snapshots} 2>&1; exit 0`,
    );
    const daemon = await startRsyncDaemon(t, { images: { path: target, parameters: { 'post-xfer exec': snapshot } } });
    const { ctx, reporter } = context([destination('mirror', daemon.url('images'))]);

    const outcomes = await uploadImage(ctx, imageAndChecksum(image));

    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0].ok, true, outcomes[0].error);
    assert.equal(outcomes[0].attempts, 3, 'image, checksum, verification: one run each');
    assert.equal(outcomes[0].target, daemon.url('images'));
    await assertUploaded(target);
    assert.deepEqual(
      (await readdir(target)).sort(),
      [basename(image), basename(checksum)].sort(),
      'no partial folder or temp file left',
    );

    const received = (await readFile(daemon.logFile, 'utf8'))
      .split('\n')
      .filter((line) => / transfer recv /.test(line))
      .map((line) => line.replace(/.* transfer recv images /, ''));
    assert.deepEqual(received, [
      `${basename(image)} ${3 << 20}`,
      `${basename(checksum)} ${(await stat(checksum)).size}`,
    ]);

    const states = (await readFile(snapshots, 'utf8')).split('--- snapshot\n').slice(1);
    assert.ok(states.length >= 2, states.join('|'));
    const whole = `${sha256(imageData)}  ${basename(image)}`;
    for (const state of states) {
      if (state.includes(basename(checksum)))
        assert.ok(state.includes(whole), `checksum file beside an incomplete image:\n${state}`);
    }
    assert.ok(
      states.some((state) => state.includes(whole) && !state.includes(basename(checksum))),
      'the image was complete on the target before the checksum file was sent',
    );

    const commands = reporter.lines.filter((line) => line.startsWith('command: '));
    assert.match(
      commands[0],
      new RegExp(`^command: rsync --no-motd --times --partial-dir=\\.rsync-partial --timeout=300 ${image} rsync://`),
    );
    assert.match(commands[1], new RegExp(` ${checksum} rsync://`));
    assert.match(commands[2], /--checksum --dry-run .*--out-format=/);
    assert.match(
      reporter.text(),
      /info: \[mirror\] uploaded and verified golden-2026-01-01\.qcow2 and golden-2026-01-01\.qcow2\.sha256sum on rsync:/,
    );
  });

  test("a read-only module fails its destination with rsync's message; the ssh destination still uploads and runs its post-upload commands in order", async (t) => {
    const readOnly = await folder('read-only');
    const viaSsh = await folder('via-ssh');
    const postLog = join(work, 'post-upload.log');
    const record = await script('record.sh', `echo "$*" >> ${postLog}`);
    const daemon = await startRsyncDaemon(t, { frozen: { path: readOnly, readOnly: true } });
    const sshd = await startSshd(t);
    const { ctx, reporter } = context([
      destination('frozen', daemon.url('frozen'), [], [`${record} frozen \${image}`]),
      destination(
        'ssh-host',
        `root@127.0.0.1:${viaSsh}/`,
        ['--progress'],
        [`${record} first \${image}`, `${record} second \${image}`],
      ),
    ]);

    // upload_args are split on spaces, so `-e "ssh -p …"` cannot be written there: RSYNC_RSH carries it.
    const { outcomes, error } = await withEnv('RSYNC_RSH', sshd.sshCommand.join(' '), () =>
      failedUpload(ctx, imageAndChecksum(image)),
    );

    assert.match(
      error.message,
      /^Upload to 1 of 2 destinations failed:\n {2}\[frozen\] rsync:\/\/127\.0\.0\.1:\d+\/frozen\/: uploading golden-2026-01-01\.qcow2 failed: rsync exited with code 1: .*module is read only/,
    );
    assert.doesNotMatch(error.message, /ssh-host/);
    const [frozen, ssh] = outcomes;
    assert.equal(frozen.ok, false);
    assert.equal(frozen.attempts, 1, 'a read-only module is not retried');
    assert.equal(frozen.postUploadCommands, 0);
    assert.equal(ssh.ok, true, ssh.error);
    assert.equal(ssh.postUploadCommands, 2);
    await assertUploaded(viaSsh);
    assert.deepEqual(await readdir(readOnly), []);
    assert.equal(await readFile(postLog, 'utf8'), 'first golden-2026-01-01.qcow2\nsecond golden-2026-01-01.qcow2\n');
    assert.match(
      reporter.text(),
      /warning: \[frozen\] upload to rsync:\/\/127\.0\.0\.1:\d+\/frozen\/ failed: .*module is read only/,
    );
  });

  test('a failing post-upload command fails its destination and stops the commands after it', async () => {
    const target = await folder('post-fails');
    const postLog = join(work, 'post-fails.log');
    const record = await script('record-fails.sh', `echo "$*" >> ${postLog}`);
    const { ctx } = context([destination('local', target, [], [`${record} one`, 'false', `${record} three`])]);
    const { outcomes, error } = await failedUpload(ctx, imageAndChecksum(image));
    assert.match(error.message, /\[local\] .*post-fails: post-upload command 'false' failed: false exited with code 1/);
    assert.equal(outcomes[0].postUploadCommands, 1);
    await assertUploaded(target);
    assert.equal(await readFile(postLog, 'utf8'), 'one\n');
  });

  test('a refused connection is retried with back-off until the daemon is up', async (t) => {
    const target = await folder('late');
    const port = await freePort();
    const starting = new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        startRsyncDaemon(t, { late: { path: target } }, { port }).then(() => resolve(), reject);
      }, 2000);
    });
    const { ctx, reporter } = context([destination('late', `rsync://127.0.0.1:${port}/late/`)]);
    const started = Date.now();
    const outcomes = await withEnv('IMAGE_FACTORY_RETRY_DELAY_MS', '1000', () =>
      uploadImage(ctx, imageAndChecksum(image)),
    );
    await starting;
    assert.equal(outcomes[0].ok, true);
    assert.ok(outcomes[0].attempts >= 4, `attempts: ${outcomes[0].attempts}`);
    assert.ok(Date.now() - started >= 2000);
    await assertUploaded(target);
    const retries = reporter.lines.filter((line) => line.startsWith('warning: [late] rsync failed'));
    assert.match(
      retries[0],
      /\(attempt 1 of 4\): rsync exited with code 10: .*Connection refused.*; retrying in 1\.0 s/,
    );
    assert.match(retries[1], /\(attempt 2 of 4\).*retrying in 2\.0 s/);
  });

  test('an upload interrupted in the middle leaves nothing under the final name on the target, and the next one completes it', async (t) => {
    const target = await folder('interrupted');
    const daemon = await startRsyncDaemon(t, { images: { path: target } });
    const big = join(work, 'big', 'golden-2026-01-01.raw');
    await mkdir(join(work, 'big'), { recursive: true });
    // 200 MiB of data (no holes), sent at 40 MiB/s: long enough to interrupt.
    const file = await open(big, 'w');
    const block = randomBytes(1 << 20);
    for (let i = 0; i < 200; i += 1) await file.write(block);
    await file.close();
    await writeFile(`${big}.sha256sum`, 'not needed\n');

    const controller = new AbortController();
    const { ctx } = context([destination('mirror', daemon.url('images'), ['--bwlimit=40m'])], {
      signal: controller.signal,
      format: 'raw',
    });
    const uploading = uploadImage(ctx, imageAndChecksum(big));
    const tempFile = (names: string[]): string | undefined =>
      names.find((name) => name.startsWith('.golden-2026-01-01.raw.'));
    let seen: string | undefined;
    for (let i = 0; i < 500 && !seen; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      const names = await readdir(target);
      assert.ok(!names.includes('golden-2026-01-01.raw'), 'the final name appeared during the transfer');
      const temp = tempFile(names);
      if (temp && (await stat(join(target, temp)).catch(() => undefined))?.size) seen = temp;
    }
    assert.ok(seen, 'rsync was writing a temporary file');
    controller.abort();
    await assert.rejects(uploading, AbortedError);

    // The daemon's receiver notices the closed connection and moves the partial aside.
    for (let i = 0; i < 300 && tempFile(await readdir(target)); i += 1)
      await new Promise((resolve) => setTimeout(resolve, 10));
    // What is left is only the hidden partial folder, which the next upload resumes from.
    assert.deepEqual(
      (await readdir(target)).filter((name) => name !== '.rsync-partial'),
      [],
    );

    const again = context([destination('mirror', daemon.url('images'))], { format: 'raw' });
    const outcomes = await uploadImage(again.ctx, imageAndChecksum(big));
    assert.equal(outcomes[0].ok, true, outcomes[0].error);
    assert.deepEqual((await readdir(target)).sort(), ['golden-2026-01-01.raw', 'golden-2026-01-01.raw.sha256sum']);
    assert.equal((await stat(join(target, 'golden-2026-01-01.raw'))).size, 200 << 20);
  });

  test('an authenticated module gets its password through RSYNC_PASSWORD; no secret shows in any line or error', async (t) => {
    const target = await folder('secured');
    const daemon = await startRsyncDaemon(t, { vault: { path: target, secrets: { uploader: 'Top-S3cret!' } } });
    const good = context([destination('vault', daemon.url('vault', 'uploader', 'Top-S3cret!'))]);
    const outcomes = await uploadImage(good.ctx, imageAndChecksum(image));
    assert.equal(outcomes[0].ok, true, outcomes[0].error);
    assert.equal(outcomes[0].target, `rsync://uploader:***@127.0.0.1:${daemon.port}/vault/`);
    await assertUploaded(target);
    assert.match(
      good.reporter.text(),
      new RegExp(`command: rsync .* rsync://uploader@127\\.0\\.0\\.1:${daemon.port}/vault/`),
    );
    assert.doesNotMatch(good.reporter.text(), /S3cret/);

    const bad = context([destination('vault', daemon.url('vault', 'uploader', 'Wrong-S3cret'))]);
    const refused = await failedUpload(bad.ctx, imageAndChecksum(image));
    assert.match(
      refused.error.message,
      /\[vault\] rsync:\/\/uploader:\*\*\*@127\.0\.0\.1:\d+\/vault\/: uploading .*auth failed on module vault/,
    );
    assert.equal(refused.outcomes[0].attempts, 1, 'a refused password is not retried');
    const everything = `${bad.reporter.text()}\n${refused.error.message}\n${JSON.stringify(refused.outcomes)}`;
    assert.doesNotMatch(everything, /S3cret/);
  });

  test('a copy that differs on the target fails the verification', async (t) => {
    const target = await folder('tampered');
    const marker = join(work, 'tampered.done');
    // Spoil the image once, right after it arrived.
    const spoil = await script(
      'spoil.sh',
      `f="$RSYNC_MODULE_PATH/${basename(image)}"; if [ -f "$f" ] && [ ! -e ${marker} ]; then printf x >> "$f"; touch ${marker}; fi; exit 0`,
    );
    const daemon = await startRsyncDaemon(t, { images: { path: target, parameters: { 'post-xfer exec': spoil } } });
    const { ctx } = context([destination('mirror', daemon.url('images'), [], ['true'])]);
    const { outcomes, error } = await failedUpload(ctx, imageAndChecksum(image));
    assert.match(
      error.message,
      /\[mirror\] .*: the copy on the target differs from the local file \(golden-2026-01-01\.qcow2\)/,
    );
    assert.equal(outcomes[0].postUploadCommands, 0);
  });

  test('upload_args that write under the final name (--inplace, --append) are refused', async () => {
    const target = await folder('inplace');
    const { ctx } = context([destination('local', target, ['-av', '--inplace'])]);
    const { error } = await failedUpload(ctx, imageAndChecksum(image));
    assert.match(
      error.message,
      /\[local\] .*: upload_args --inplace would let rsync write into the file under its final name/,
    );
    assert.deepEqual(await readdir(target), []);
  });

  test('upload=false uploads nothing', async () => {
    const target = await folder('disabled');
    const { ctx, reporter } = context([destination('local', target, [], ['touch /nonexistent/should-not-run'])], {
      upload: false,
    });
    assert.deepEqual(await uploadImage(ctx, imageAndChecksum(image)), []);
    assert.deepEqual(await readdir(target), []);
    assert.deepEqual(
      reporter.lines.filter((line) => line.startsWith('command: ')),
      [],
    );
    assert.match(reporter.text(), /Upload disabled: not uploading to local/);
  });

  test('a dry run prints the rsync and post-upload command lines and runs nothing', async () => {
    const target = await folder('dry');
    const { ctx, reporter } = context(
      [destination('dry', `rsync://user:dry-secret@127.0.0.1:9/images`, ['--progress'], ['notify ${image}'])],
      { recording: true },
    );
    const outcomes = await uploadImage(ctx, imageAndChecksum(image));
    assert.equal(outcomes[0].ok, true);
    const commands = reporter.lines.filter((line) => line.startsWith('command: '));
    assert.deepEqual(commands, [
      // A qcow2 image and its checksum: not sent sparse (only raw and fixed VHD files are mostly holes).
      `command: rsync --progress --no-motd --times --partial-dir=.rsync-partial --timeout=300 ${image} rsync://user@127.0.0.1:9/images/`,
      `command: rsync --progress --no-motd --times --partial-dir=.rsync-partial --timeout=300 ${checksum} rsync://user@127.0.0.1:9/images/`,
      `command: rsync --progress --no-motd --checksum --dry-run --timeout=300 '--out-format=image-factory-verify:%i %n' ${image} ${checksum} rsync://user@127.0.0.1:9/images/`,
      'command: notify golden-2026-01-01.qcow2',
    ]);
    assert.doesNotMatch(reporter.text(), /dry-secret/);
    assert.deepEqual(await readdir(target), []);
  });
});
