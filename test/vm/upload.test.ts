import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeWorkDir, writeFixtureConfig } from '../support/fixture.js';
import { leftovers } from '../support/leftovers.js';
import { startTestRegistry } from '../support/oci-registry.js';
import { startRsyncDaemon } from '../support/rsync-daemon.js';
import { builtStem, runCli } from '../support/run-cli.js';
import { startSshd } from '../support/sshd.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function workDir(name: string): string {
  const dir = makeWorkDir(name);
  dirs.push(dir);
  return dir;
}

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('a build that uploads', () => {
  test('publishes to an rsync daemon, over ssh and to an OCI registry, verifies, runs post-upload and post-build commands; a read-only module fails alone', async (t) => {
    const dir = workDir('upload');
    const images = join(dir, 'daemon-images');
    const readonly = join(dir, 'daemon-readonly');
    const sshTarget = join(dir, 'ssh-images');
    for (const folder of [images, readonly, sshTarget]) mkdirSync(folder);
    const daemon = await startRsyncDaemon(t, {
      images: { path: images, secrets: { uploader: 's3cr3t-pass' } },
      frozen: { path: readonly, readOnly: true },
    });
    const sshd = await startSshd(t);
    const registry = await startTestRegistry(t);
    const marks = join(dir, 'marks.log');
    // The original splits post-upload commands at spaces, without quoting: a script takes the arguments.
    const mark = join(dir, 'mark.sh');
    writeFileSync(mark, `#!/bin/sh\necho "$1:$2" >> ${marks}\n`, { mode: 0o755 });
    const extra = [
      '[daemon]',
      'upload_type = rsync',
      `upload_target = ${daemon.url('images', 'uploader', 's3cr3t-pass')}`,
      'upload_args = --quiet',
      `post-upload-command = ${mark} daemon ${'${image}'}`,
      `post-upload-command1 = ${mark} daemon1 ${'${image}'}`,
      '[frozen]',
      'upload_type = rsync',
      `upload_target = ${daemon.url('frozen')}`,
      `post-upload-command = ${mark} frozen ${'${image}'}`,
      '[ssh]',
      'upload_type = rsync',
      `upload_target = root@127.0.0.1:${sshTarget}/`,
      `post-upload-command = ${mark} ssh ${'${image}'}`,
      '[registry]',
      'upload_type = oci',
      `upload_target = ${registry.registry}/fixture/golden:v1`,
      `ca = ${registry.caFile}`,
      `username = ${registry.username}`,
      `password = ${registry.password}`,
      'oci-containerdisk = yes',
      `post-upload-command = ${mark} registry ${'${reference}'}`,
      '',
    ].join('\n');
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': 8 },
      keys: {
        upload_destinations: 'daemon, frozen, ssh, registry',
        'post-build-command': `echo built >> ${marks}; echo`,
      },
      extra,
    });
    const env = {
      IMAGE_FACTORY_CONFIG: config,
      RSYNC_RSH: sshd.sshCommand.join(' '),
      IMAGE_FACTORY_RETRY_DELAY_MS: '50',
    };
    const run = await runCli([image], { cwd: dir, env });
    const stem = builtStem(run.stderr, image);
    const file = `${stem}.qcow2`;

    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /upload step failed: .*1 of 4 destinations failed/s);
    assert.match(run.stderr, /\[frozen\] rsync:\/\/127\.0\.0\.1:\d+\/frozen\/: .*read only/is);
    for (const target of [images, sshTarget]) {
      assert.deepEqual(
        readdirSync(target)
          .filter((f) => !f.startsWith('.'))
          .sort(),
        // The image, its checksum, the reports (the metrics among them) and the checksum list of them all.
        [
          `${stem}.SHA256SUMS`,
          `${stem}.cdx.json`,
          `${stem}.manifest.json`,
          `${stem}.metrics.json`,
          `${stem}.packages`,
          file,
          `${file}.sha256sum`,
        ],
      );
      execFileSync('sha256sum', ['-c', `${file}.sha256sum`], { cwd: target });
      execFileSync('sha256sum', ['-c', `${stem}.SHA256SUMS`], { cwd: target });
      assert.equal(
        readFileSync(join(target, `${file}.sha256sum`), 'utf8'),
        readFileSync(join(dir, `${file}.sha256sum`), 'utf8'),
      );
    }
    assert.deepEqual(readdirSync(readonly), []);
    // The registry holds the image as an artifact whose layer is the image (its digest the image's SHA-256),
    // a containerDisk beside it, and the reports as referrers in the tag-schema index.
    const imageSha256 = readFileSync(join(dir, `${file}.sha256sum`), 'utf8').split(' ')[0];
    const skopeo = (...args: string[]): string =>
      execFileSync(
        'skopeo',
        [
          ...args.slice(0, -1),
          '--cert-dir',
          registry.certDir,
          '--creds',
          `${registry.username}:${registry.password}`,
          args.at(-1) as string,
        ],
        { encoding: 'utf8' },
      );
    const manifestText = skopeo('inspect', '--raw', `docker://${registry.registry}/fixture/golden:v1`);
    const manifest = JSON.parse(manifestText) as { layers: { digest: string; size: number }[] };
    assert.equal(manifest.layers[0].digest, `sha256:${imageSha256}`);
    const digest = `sha256:${createHash('sha256').update(manifestText).digest('hex')}`;
    const reference = `${registry.registry}/fixture/golden:v1@${digest}`;
    assert.match(run.stderr, new RegExp(`\\[registry\\] pushed ${reference.replace(/[.]/g, '\\.')}, `));
    const disk = JSON.parse(
      skopeo('inspect', '--raw', `docker://${registry.registry}/fixture/golden:v1-containerdisk`),
    );
    assert.equal(disk.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar');
    const referrers = JSON.parse(
      skopeo('inspect', '--raw', `docker://${registry.registry}/fixture/golden:${digest.replace(':', '-')}`),
    );
    assert.equal(referrers.manifests.length, 3);
    assert.doesNotMatch(run.stderr, new RegExp(registry.password));
    // Post-upload commands ran in order with ${image} expanded, only where the upload succeeded;
    // the build failed, so the post-build command did not run.
    assert.deepEqual(readFileSync(marks, 'utf8').trim().split('\n'), [
      `daemon:${file}`,
      `daemon1:${file}`,
      `ssh:${file}`,
      `registry:${reference}`,
    ]);
    // The image that was built stays: only its upload failed.
    execFileSync('sha256sum', ['-c', `${file}.sha256sum`], { cwd: dir });
    assert.doesNotMatch(run.stderr, /s3cr3t-pass/);
    assert.match(run.stderr, /uploader:\*\*\*@|uploader@/);
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('--no-upload builds without uploading, and the post-build command gets the image name', async (t) => {
    const dir = workDir('noupload');
    const images = join(dir, 'daemon-images');
    mkdirSync(images);
    const daemon = await startRsyncDaemon(t, { images: { path: images } });
    const marks = join(dir, 'marks.log');
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': 8 },
      keys: { upload_destinations: 'daemon', 'post-build-command': `echo >> ${marks}` },
      extra: `[daemon]\nupload_type = rsync\nupload_target = ${daemon.url('images')}\n`,
    });
    const run = await runCli([image, '--no-upload', '-f', 'raw'], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(readdirSync(images), []);
    assert.equal(readFileSync(marks, 'utf8').trim(), `${builtStem(run.stderr, image)}.raw`);
  });
});

describe('answer-delivery = http', () => {
  test('serves the answer file to the installer during the install only', async () => {
    const dir = workDir('http');
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': 8 },
      keys: { 'answer-delivery': 'http' },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    const match = new RegExp(
      `serving the answer file at http://10\\.0\\.2\\.2:(\\d+)/TOKEN/${image}-answer\\.cfg`,
    ).exec(run.stderr);
    assert.ok(match, 'the server was announced');
    assert.match(
      run.stderr,
      new RegExp(
        `--extra-args 'preseed/url=http://10\\.0\\.2\\.2:\\d+/[^/ ']{16,}/${image}-answer\\.cfg console=ttyS0'`,
      ),
    );
    assert.doesNotMatch(run.stderr, /--initrd-inject/);
    assert.match(
      run.stderr,
      new RegExp(`answer file server: GET /TOKEN/${image}-answer\\.cfg from the installer \\([^)]+\\) -> 200`),
    );
    assert.ok(await portIsClosed(Number(match[1])), 'the server is gone after the build');
    const stem = builtStem(run.stderr, image);
    assert.ok(existsSync(join(dir, `${stem}.qcow2`)));
    assert.deepEqual(leftovers(dir, stem), []);
  });
});
