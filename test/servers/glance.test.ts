import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ConfigParser } from '../../src/config/configparser.js';
import { resolveImageSpec, type ImageSpec } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import type { Artifact } from '../../src/pipeline/artifacts.js';
import { uploadImage } from '../../src/pipeline/upload.js';
import { testContext } from '../support/build-context.js';
import { startGlanceApi, type GlanceApi } from '../support/glance-api.js';

/**
 * Uploads to Debian's real glance-api on 127.0.0.1 (sqlite, file store, no
 * Keystone), checked through the service's own API: a qcow2 made by
 * qemu-img, its properties, replacement only with glance-replace and only
 * once the new image is active.
 */

const run = promisify(execFile);
process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '20';
// A service without Keystone: no OS_* credentials from the machine running the test.
for (const name of Object.keys(process.env)) if (name.startsWith('OS_')) delete process.env[name];

let work: string;
let glance: GlanceApi;
let image: string;
let imageBytes: Buffer;
let marks: string;
let mark: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'glance-test-'));
  image = join(work, 'golden-2026-01-01.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
  // Some data, so the image is more than its header.
  await run('qemu-io', ['-c', 'write -P 0x5a 1M 2M', image]);
  imageBytes = await readFile(image);
  marks = join(work, 'marks');
  mark = join(work, 'mark.sh');
  await writeFile(mark, `#!/bin/sh\necho "$1:$2" >> ${marks}\n`, { mode: 0o755 });
  glance = await startGlanceApi(undefined);
});
after(async () => {
  await glance?.stop();
  await rm(work, { recursive: true, force: true });
});

/** An image spec read from INI text through the real configuration, as a build reads it. */
function specFrom(destination: string, options: { firmware?: string } = {}): ImageSpec {
  const config = new ConfigParser();
  const text = [
    '[golden]',
    `installer_image = ${image}`,
    `firmware = ${options.firmware ?? 'uefi-secure'}`,
    'format = qcow2',
    'upload_destinations = cloud',
    '[cloud]',
    'upload_type = glance',
    destination,
    `post-upload-command = ${mark} ${'${image}'} ${'${reference}'}`,
    '',
  ].join('\n');
  config.read(text, join(work, 'image.conf'));
  return resolveImageSpec(config, 'golden', {
    outputDir: work,
    date: '2026-01-01',
    knownImages: ['golden'],
    hadSection: true,
    upload: true,
  });
}

/** The build's one image, with the SHA-256 it published. */
const artifacts = (sha256?: string): Artifact[] => [{ role: 'image', format: 'qcow2', final: image, sha256 }];

const digest = (algorithm: string): string => createHash(algorithm).update(imageBytes).digest('hex');

async function upload(spec: ImageSpec, sha256 = createHash('sha256').update(imageBytes).digest('hex')) {
  const { ctx, reporter } = testContext(spec);
  const [outcome] = await uploadImage(ctx, artifacts(sha256), { ID: 'debian', VERSION_ID: '12' });
  return { outcome, log: reporter.text() };
}

describe('a Glance destination', () => {
  test('uploads the image active with its checksum, formats, properties, tags and visibility', async () => {
    const spec = specFrom(
      [
        `upload_target = ${glance.endpoint}/`,
        'glance-name = golden-uploaded',
        'glance-visibility = community',
        'glance-tags = golden, nightly',
        'glance-properties =',
        '    hw_disk_bus = virtio',
        '    os_version = 12.8',
      ].join('\n'),
    );
    const { outcome, log } = await upload(spec);
    assert.equal(outcome.ok, true, outcome.error ?? log);
    assert.match(outcome.references?.[0] ?? '', /^[0-9a-f-]{36}$/);
    const [stored] = (await glance.images()).filter((entry) => entry.name === 'golden-uploaded');
    assert.equal(stored.id, outcome.references?.[0]);
    assert.equal(stored.status, 'active');
    assert.equal(stored.size, imageBytes.length);
    assert.equal(stored.checksum, digest('md5'));
    assert.equal(stored.os_hash_algo, 'sha512');
    assert.equal(stored.os_hash_value, digest('sha512'));
    assert.equal(stored.disk_format, 'qcow2');
    assert.equal(stored.container_format, 'bare');
    assert.equal(stored.visibility, 'community');
    assert.deepEqual([...(stored.tags as string[])].sort(), ['golden', 'nightly']);
    assert.equal(stored.architecture, 'x86_64');
    assert.equal(stored.os_distro, 'debian');
    assert.equal(stored.os_version, '12.8', 'glance-properties wins over the derived value');
    assert.equal(stored.hw_firmware_type, 'uefi');
    assert.equal(stored.hw_machine_type, 'q35');
    assert.equal(stored.os_secure_boot, 'required');
    assert.equal(stored.hw_disk_bus, 'virtio');
    // The service's own copy is the file, byte for byte.
    assert.ok((await readFile(join(glance.store, stored.id))).equals(imageBytes));
    assert.match(await readFile(marks, 'utf8'), new RegExp(`^golden-2026-01-01.qcow2:${stored.id}$`, 'm'));
  });

  test('an image of the same name: refused without glance-replace, nothing created; replaced after the new one is active', async () => {
    const target = `upload_target = ${glance.endpoint}`;
    const first = await upload(specFrom([target, 'glance-replace = yes'].join('\n'), { firmware: 'bios' }));
    assert.equal(first.outcome.ok, true, first.outcome.error);
    const before = (await glance.images()).filter((entry) => entry.name === 'golden');
    assert.deepEqual(
      before.map((entry) => entry.id),
      [first.outcome.references?.[0]],
    );
    assert.equal(before[0].hw_firmware_type, undefined, 'a BIOS image says nothing of UEFI');

    const refused = await upload(specFrom(target));
    assert.equal(refused.outcome.ok, false);
    assert.match(refused.outcome.error ?? '', /an image named golden already exists .* set glance-replace = yes/);
    assert.deepEqual(
      (await glance.images()).filter((entry) => entry.name === 'golden').map((entry) => entry.id),
      [first.outcome.references?.[0]],
      'nothing created',
    );

    const replaced = await upload(specFrom([target, 'glance-replace = yes'].join('\n')));
    assert.equal(replaced.outcome.ok, true, replaced.outcome.error);
    const after = (await glance.images()).filter((entry) => entry.name === 'golden');
    assert.deepEqual(
      after.map((entry) => [entry.id, entry.status]),
      [[replaced.outcome.references?.[0], 'active']],
    );
    // The log says the new image was verified before the old one went.
    const verified = replaced.log.indexOf(`created image ${replaced.outcome.references?.[0]}`);
    const removed = replaced.log.indexOf(`replaced image ${first.outcome.references?.[0]}`);
    assert.ok(verified >= 0 && removed > verified, replaced.log);
  });

  test('a replacement whose bytes are not the published ones fails, its record is deleted, and the image it was to replace stays active', async () => {
    const target = `upload_target = ${glance.endpoint}`;
    const first = await upload(specFrom([target, 'glance-replace = yes'].join('\n'), { firmware: 'bios' }));
    assert.equal(first.outcome.ok, true, first.outcome.error);
    // The file as it was published had other bytes: changed since its checksum was written.
    const failed = await upload(specFrom([target, 'glance-replace = yes'].join('\n')), 'f'.repeat(64));
    assert.equal(failed.outcome.ok, false);
    assert.match(
      failed.outcome.error ?? '',
      /the bytes sent to Glance have SHA-256 [0-9a-f]{64}, not the published f{64}/,
    );
    const created = /created image (\S+) /.exec(failed.log)?.[1];
    assert.ok(created && created !== first.outcome.references?.[0], failed.log);
    const images = await glance.images();
    assert.ok(!images.some((entry) => entry.id === created), 'the failed upload deleted its own record');
    assert.deepEqual(
      images.filter((entry) => entry.name === 'golden').map((entry) => [entry.id, entry.status]),
      [[first.outcome.references?.[0], 'active']],
      'the image it was to replace is still there, active',
    );
    assert.doesNotMatch(failed.log, /replaced image/);
  });

  test('a service that does not answer fails the destination by name, after the retries', async () => {
    const { outcome, log } = await upload(specFrom('upload_target = http://127.0.0.1:9/'));
    assert.equal(outcome.ok, false);
    assert.match(outcome.error ?? '', /no answer from http:\/\/127\.0\.0\.1:9/);
    const warnings = log.split('\n').filter((line) => line.startsWith('warning: [cloud] listing the images named'));
    assert.deepEqual(
      warnings.map((line) => /\(attempt (\d) of 4\)/.exec(line)?.[1]),
      ['1', '2', '3'],
      'one warning a retry',
    );
    assert.match(log, /warning: \[cloud\] upload to http:\/\/127\.0\.0\.1:9 failed: /);
  });

  test('bad input: a glance destination without an endpoint, or one that is not an http(s) URL', () => {
    assert.throws(
      () => specFrom(''),
      (error: unknown) =>
        error instanceof UsageError &&
        /\[cloud\] has no 'upload_target': a glance destination needs its endpoint/.test(error.message),
    );
    assert.throws(
      () => specFrom('upload_target = glance.example.org:/images'),
      (error: unknown) =>
        error instanceof UsageError &&
        /image\.conf:\d+: \[cloud\] upload_target: .* is not an http\(s\) URL/.test(error.message),
    );
    assert.throws(
      () => specFrom(`upload_target = ${glance.endpoint}\nglance-visibility = everyone`),
      (error: unknown) =>
        error instanceof UsageError &&
        /'everyone' is not one of private, shared, community, public/.test(error.message),
    );
  });
});
