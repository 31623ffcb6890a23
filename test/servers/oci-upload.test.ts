import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { UploadDestination } from '../../src/config/image-spec.js';
import type { OciDestination } from '../../src/config/oci-destination.js';
import type { Artifact } from '../../src/pipeline/artifacts.js';
import { uploadFailure, uploadImage } from '../../src/pipeline/upload.js';
import { testContext, testSpec } from '../support/build-context.js';
import { blobUploadLines, startCuttingProxy, startTestRegistry, type TestRegistry } from '../support/oci-registry.js';

const run = promisify(execFile);
process.env.IMAGE_FACTORY_RETRY_DELAY_MS = '20';
// Several chunks for a few MiB: a cut falls inside one, and the push resumes after the last whole one.
process.env.IMAGE_FACTORY_OCI_CHUNK_BYTES = String(1 << 20);

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'oci-upload-test-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/**
 * A build's published files, as the upload step is given them: a qcow2 image and the three referrer reports,
 * and with `signature` the detached signature of SHA256SUMS (signing-key) as a fourth.
 */
async function buildFiles(name: string, imageData: Buffer, signature?: Buffer): Promise<Artifact[]> {
  const stem = `${name}-2026-01-01`;
  const image = join(work, `${stem}.qcow2`);
  await writeFile(image, imageData);
  const artifacts: Artifact[] = [
    { role: 'image', format: 'qcow2', final: image, sha256: sha256(imageData), size: imageData.length },
  ];
  const reports: [Artifact['role'], string, string][] = [
    ['manifest', `${stem}.manifest.json`, '{"packages":[]}\n'],
    ['sbom', `${stem}.cdx.json`, '{"bomFormat":"CycloneDX"}\n'],
    ['sums', `${stem}.SHA256SUMS`, `${sha256(imageData)}  ${basename(image)}\n`],
  ];
  if (signature) reports.push(['sums-signature', `${stem}.SHA256SUMS.gpg`, signature.toString('latin1')]);
  for (const [role, file, text] of reports) {
    await writeFile(join(work, file), text, 'latin1');
    artifacts.push({ role, final: join(work, file) });
  }
  return artifacts;
}

function ociDestination(name: string, oci: OciDestination, postUpload: string[] = []): UploadDestination {
  return {
    name,
    type: 'oci',
    target: `${oci.registry}/${oci.repository}${oci.tag ? `:${oci.tag}` : ''}`,
    args: [],
    oci,
    postUploadCommands: (image, reference = '') =>
      postUpload.map((command) =>
        command.replaceAll('${image}', image).replaceAll('${reference}', reference).split(' '),
      ),
  };
}

function registryDestination(registry: TestRegistry, repository: string, extra: Partial<OciDestination> = {}) {
  return {
    registry: registry.registry,
    repository,
    scheme: 'https' as const,
    ca: registry.caFile,
    username: registry.username,
    password: registry.password,
    containerDisk: false,
    ...extra,
  };
}

function context(destinations: UploadDestination[]) {
  const spec = testSpec({
    name: 'golden',
    stem: 'golden-2026-01-01',
    outputDir: work,
    upload: true,
    uploads: destinations,
  });
  return testContext(spec);
}

interface PulledDescriptor {
  digest: string;
  annotations: Record<string, string>;
}

/** The fields of a pulled manifest the tests read. */
interface PulledManifest {
  artifactType?: string;
  config: PulledDescriptor;
  layers: PulledDescriptor[];
  subject?: PulledDescriptor;
  annotations: Record<string, string>;
}

/** `skopeo copy` into a dir: layout; the manifest and every blob, as skopeo got them. */
async function pull(
  registry: TestRegistry,
  reference: string,
): Promise<{ manifest: PulledManifest; blob: (digest: string) => Promise<Buffer> }> {
  const dir = await mkdtemp(join(work, 'pulled-'));
  await run('skopeo', [
    'copy',
    '--src-cert-dir',
    registry.certDir,
    '--src-creds',
    `${registry.username}:${registry.password}`,
    `docker://${reference}`,
    `dir:${dir}`,
  ]);
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as PulledManifest;
  return { manifest, blob: (digest) => readFile(join(dir, digest.replace(/^sha256:/, ''))) };
}

/** A manifest's bytes as the registry serves them (skopeo inspect --raw). */
async function rawManifest(registry: TestRegistry, reference: string): Promise<Buffer> {
  const { stdout } = await run(
    'skopeo',
    [
      'inspect',
      '--raw',
      '--cert-dir',
      registry.certDir,
      '--creds',
      `${registry.username}:${registry.password}`,
      `docker://${reference}`,
    ],
    { encoding: 'buffer' },
  );
  return stdout;
}

/** The uncompressed tar layer's entries, with owners (GNU tar reads it). */
async function tarListing(data: Buffer): Promise<string> {
  const file = join(work, `layer-${sha256(data).slice(0, 8)}.tar`);
  await writeFile(file, data);
  const { stdout } = await run('tar', ['--numeric-owner', '-tvf', file]);
  return stdout;
}

describe('upload_type = oci against a real registry (docker-registry with TLS and htpasswd)', () => {
  test('pushes the image as an artifact and a containerDisk; skopeo pulls both back byte for byte; the reports and the signature of SHA256SUMS are referrers; a second push sends no blob', async (t) => {
    const registry = await startTestRegistry(t);
    const imageData = randomBytes(3 << 20);
    // Bytes as a detached OpenPGP signature has them (binary): the referrer carries them unchanged.
    const files = await buildFiles('golden', imageData, randomBytes(119));
    const oci = registryDestination(registry, 'images/golden', { containerDisk: true });
    const { ctx, reporter } = context([ociDestination('registry', oci, ['echo pushed ${reference}'])]);

    const outcomes = await uploadImage(ctx, files);

    assert.equal(outcomes[0].ok, true, `${outcomes[0].error}\n${reporter.text()}`);
    const [artifactRef, diskRef] = outcomes[0].references ?? [];
    assert.match(artifactRef, new RegExp(`^${registry.registry}/images/golden:2026-01-01@sha256:[0-9a-f]{64}$`));
    assert.match(
      diskRef,
      new RegExp(`^${registry.registry}/images/golden:2026-01-01-containerdisk@sha256:[0-9a-f]{64}$`),
    );
    assert.ok(
      reporter.lines.includes(`output: pushed ${artifactRef}`),
      'the post-upload command is given ${reference}',
    );
    assert.ok(!reporter.text().includes(registry.password), 'the password never shows');

    const artifact = await pull(registry, `${registry.registry}/images/golden:2026-01-01`);
    assert.equal(artifact.manifest.artifactType, 'application/vnd.image-factory.image.qcow2');
    assert.equal(artifact.manifest.layers.length, 1);
    assert.equal(artifact.manifest.layers[0].digest, `sha256:${sha256(imageData)}`);
    assert.deepEqual(await artifact.blob(artifact.manifest.layers[0].digest), imageData);
    assert.equal(artifact.manifest.annotations['org.image-factory.sha256'], sha256(imageData));
    assert.equal(artifact.manifest.annotations['org.image-factory.arch'], 'x86_64');
    assert.equal(artifact.manifest.annotations['org.image-factory.firmware'], 'bios');
    assert.equal(
      sha256(await rawManifest(registry, `${registry.registry}/images/golden:2026-01-01`)),
      artifactRef.split('@sha256:')[1],
    );

    const disk = await pull(registry, `${registry.registry}/images/golden:2026-01-01-containerdisk`);
    const layer = await disk.blob(disk.manifest.layers[0].digest);
    assert.match(
      await tarListing(layer),
      /^dr-xr-xr-x 107\/107 +0 .* disk\/\n-r--r--r-- 107\/107 +3145728 .* disk\/golden-2026-01-01\.qcow2\n$/,
    );
    const config = JSON.parse((await disk.blob(disk.manifest.config.digest)).toString());
    assert.equal(config.architecture, 'amd64');
    assert.deepEqual(config.rootfs.diff_ids, [disk.manifest.layers[0].digest]);
    const extracted = join(work, 'extracted');
    await rm(extracted, { recursive: true, force: true });
    await run('mkdir', [extracted]);
    await writeFile(join(work, 'disk.tar'), layer);
    await run('tar', ['-xf', join(work, 'disk.tar'), '-C', extracted]);
    assert.deepEqual(await readFile(join(extracted, 'disk', 'golden-2026-01-01.qcow2')), imageData);

    // distribution 2.8 has no referrers API: the referrers are in the tag-schema index sha256-<hex>.
    for (const reference of [artifactRef, diskRef]) {
      const subject = reference.split('@')[1];
      const index = JSON.parse(
        (await rawManifest(registry, `${registry.registry}/images/golden:${subject.replace(':', '-')}`)).toString(),
      );
      assert.deepEqual(
        index.manifests.map((entry: { artifactType: string }) => entry.artifactType),
        [
          'application/vnd.image-factory.manifest+json',
          'application/vnd.cyclonedx+json',
          'application/vnd.image-factory.sha256sums',
          'application/pgp-signature',
        ],
      );
      for (const entry of index.manifests) {
        const referrer = await pull(registry, `${registry.registry}/images/golden@${entry.digest}`);
        assert.equal(referrer.manifest.subject?.digest, subject);
        const file = files.find(
          (a) => basename(a.final) === referrer.manifest.layers[0].annotations['org.opencontainers.image.title'],
        )!;
        assert.deepEqual(await referrer.blob(referrer.manifest.layers[0].digest), await readFile(file.final));
      }
    }

    const uploadsBefore = blobUploadLines(registry.log()).length;
    assert.ok(uploadsBefore > 0, 'the access log shows the blob uploads');
    const again = await uploadImage(context([ociDestination('registry', oci)]).ctx, files);
    assert.equal(again[0].ok, true, again[0].error);
    assert.deepEqual(again[0].references, outcomes[0].references, 'the same manifests, the same digests');
    assert.equal(blobUploadLines(registry.log()).length, uploadsBefore, 'no blob is sent again');
  });

  test('a push cut mid-blob is retried (where the session stands is asked first); one warning; the pull matches', async (t) => {
    const registry = await startTestRegistry(t);
    const proxy = await startCuttingProxy(t, registry.port, { afterBytes: 600 << 10, times: 1 });
    const imageData = randomBytes(3 << 20);
    const files = await buildFiles('cut', imageData);
    const oci = registryDestination(registry, 'images/cut', { registry: `127.0.0.1:${proxy.port}` });
    const { ctx, reporter } = context([ociDestination('registry', oci)]);

    const outcomes = await uploadImage(ctx, files);

    assert.equal(outcomes[0].ok, true, `${outcomes[0].error}\n${reporter.text()}`);
    assert.equal(proxy.cuts(), 1);
    const warnings = reporter.lines.filter((line) => line.startsWith('warning:'));
    assert.equal(warnings.length, 1, reporter.text());
    assert.match(warnings[0], /\[registry\] pushing cut-2026-01-01\.qcow2 failed \(attempt 1 of 4\)/);
    const pulled = await pull(registry, `${registry.registry}/images/cut:2026-01-01`);
    assert.deepEqual(await pulled.blob(pulled.manifest.layers[0].digest), imageData);
    // The push asked the registry where the cut session stood; distribution drops a session whose chunk broke
    // off (its offset no longer matches), so the blob went again in a new session: once more, not more.
    const log = registry.log();
    assert.match(log, /"GET \/v2\/images\/cut\/blobs\/uploads\/[^ ]+ HTTP\/1\.1" 404/);
    const patches = blobUploadLines(log).filter((line) => line.includes('"PATCH '));
    // Three 1 MiB chunks of the image, the empty config, three reports; and the chunk that was cut.
    assert.ok(patches.length <= 8, `${patches.length} PATCH requests`);
  });

  test('a push cut between two chunks resumes the session where the registry stands: no byte is sent twice', async (t) => {
    const registry = await startTestRegistry(t);
    // The first chunk of the image goes through; the next PATCH is cut before it reaches the registry.
    const proxy = await startCuttingProxy(t, registry.port, { afterBytes: 1 << 20, times: 1, between: true });
    const imageData = randomBytes(3 << 20);
    const files = await buildFiles('resume', imageData);
    const oci = registryDestination(registry, 'images/resume', { registry: `127.0.0.1:${proxy.port}` });
    const { ctx, reporter } = context([ociDestination('registry', oci)]);

    const outcomes = await uploadImage(ctx, files);

    assert.equal(outcomes[0].ok, true, `${outcomes[0].error}\n${reporter.text()}`);
    assert.equal(proxy.cuts(), 1);
    assert.equal(reporter.lines.filter((line) => line.startsWith('warning:')).length, 1, reporter.text());
    const log = registry.log();
    assert.match(log, /"GET \/v2\/images\/resume\/blobs\/uploads\/[^ ]+ HTTP\/1\.1" 204/);
    const patches = blobUploadLines(log).filter((line) => line.includes('"PATCH '));
    // Three 1 MiB chunks of the image, the empty config, three reports: none twice.
    assert.equal(patches.length, 7, patches.join('\n'));
    const pulled = await pull(registry, `${registry.registry}/images/resume:2026-01-01`);
    assert.deepEqual(await pulled.blob(pulled.manifest.layers[0].digest), imageData);
  });

  test('a push that keeps being cut fails naming the destination, and leaves no tag', async (t) => {
    const registry = await startTestRegistry(t);
    const proxy = await startCuttingProxy(t, registry.port, { afterBytes: 600 << 10, times: Infinity });
    const files = await buildFiles('broken', randomBytes(2 << 20));
    const oci = registryDestination(registry, 'images/broken', { registry: `127.0.0.1:${proxy.port}` });
    const { ctx, reporter } = context([ociDestination('registry', oci)]);

    const outcomes = await uploadImage(ctx, files);

    assert.equal(outcomes[0].ok, false);
    const error = uploadFailure(outcomes)!;
    assert.match(error.message, /\[registry\] 127\.0\.0\.1:[0-9]+\/images\/broken: pushing to .* failed/);
    assert.equal(reporter.lines.filter((line) => / failed \(attempt [0-9] of 4\)/.test(line)).length, 3);
    await assert.rejects(
      rawManifest(registry, `${registry.registry}/images/broken:2026-01-01`),
      /manifest unknown|not found/i,
    );
    assert.ok(!reporter.text().includes(registry.password));
  });

  test('credentials from the Docker config file ($DOCKER_CONFIG); none, or wrong ones, fail clearly', async (t) => {
    const registry = await startTestRegistry(t);
    const files = await buildFiles('creds', randomBytes(64 << 10));
    const anonymous = registryDestination(registry, 'images/creds', { username: undefined, password: undefined });

    const none = await uploadImage(context([ociDestination('registry', anonymous)]).ctx, files);
    assert.match(none[0].error ?? '', /needs credentials and none were given/);

    const wrong = await uploadImage(
      context([ociDestination('registry', { ...anonymous, username: 'builder', password: 'not-it' })]).ctx,
      files,
    );
    assert.match(wrong[0].error ?? '', /refused the credentials/);
    assert.ok(!(wrong[0].error ?? '').includes('not-it'));

    const dockerConfig = await mkdtemp(join(work, 'docker-'));
    const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [registry.registry]: { auth } } }));
    const saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = dockerConfig;
    try {
      const fromFile = await uploadImage(context([ociDestination('registry', anonymous)]).ctx, files);
      assert.equal(fromFile[0].ok, true, fromFile[0].error);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved;
    }
  });

  test("without the section's CA the registry's certificate is refused, not trusted blindly", async (t) => {
    const registry = await startTestRegistry(t);
    const files = await buildFiles('untrusted', randomBytes(1024));
    const oci = registryDestination(registry, 'images/untrusted', { ca: undefined });
    const outcomes = await uploadImage(context([ociDestination('registry', oci)]).ctx, files);
    assert.equal(outcomes[0].ok, false);
    assert.match(outcomes[0].error ?? '', /self.signed|unable to (?:get|verify)|certificate/i);
    assert.equal(blobUploadLines(registry.log()).length, 0);
  });

  test('a registry with token authentication: the push meets the Bearer challenge with a token from its realm', async (t) => {
    const registry = await startTestRegistry(t, { auth: 'token' });
    const imageData = randomBytes(256 << 10);
    const files = await buildFiles('token', imageData);
    const { ctx, reporter } = context([ociDestination('registry', registryDestination(registry, 'images/token'))]);

    const outcomes = await uploadImage(ctx, files);

    assert.equal(outcomes[0].ok, true, `${outcomes[0].error}\n${reporter.text()}`);
    assert.ok(registry.tokenRequests() >= 1, 'a token was asked for');
    const pulled = await pull(registry, `${registry.registry}/images/token:2026-01-01`);
    assert.deepEqual(await pulled.blob(pulled.manifest.layers[0].digest), imageData);
    assert.ok(!reporter.text().includes(registry.password));
  });

  test("NODE_EXTRA_CA_CERTS is trusted as Node trusts it, without the section's ca", async (t) => {
    const registry = await startTestRegistry(t);
    const module = new URL('../../src/net/oci-registry.js', import.meta.url).href;
    const script = `
      const { OciRegistry } = await import(${JSON.stringify(module)});
      const registry = new OciRegistry({ registry: process.argv[1], repository: 'images/ca', scheme: 'https',
        credentials: { username: process.argv[2], password: process.env.REGISTRY_PASSWORD } });
      console.log(await registry.hasBlob('sha256:' + '0'.repeat(64)) === undefined ? 'absent' : 'present');`;
    const argv = ['--input-type=module', '-e', script, registry.registry, registry.username];
    const env = { ...process.env, REGISTRY_PASSWORD: registry.password };
    const trusted = await run(process.execPath, argv, { env: { ...env, NODE_EXTRA_CA_CERTS: registry.caFile } });
    assert.equal(trusted.stdout.trim(), 'absent');
    await assert.rejects(run(process.execPath, argv, { env }), /self.signed|unable to (?:get|verify)|certificate/i);
  });

  test('two formats: the first at the tag, the other at <tag>-<format>, each with its own artifactType and digest', async (t) => {
    const registry = await startTestRegistry(t);
    const qcow2 = randomBytes(100 << 10);
    const raw = randomBytes(300 << 10);
    const files = await buildFiles('formats', qcow2);
    const rawPath = join(work, 'formats-2026-01-01.raw');
    await writeFile(rawPath, raw);
    const rawArtifact: Artifact = {
      role: 'image',
      format: 'raw',
      final: rawPath,
      sha256: sha256(raw),
      size: raw.length,
    };
    const artifacts = [files[0], rawArtifact, ...files.slice(1)];
    const oci = registryDestination(registry, 'images/formats', { tag: 'stable' });
    const { ctx } = context([ociDestination('registry', oci)]);

    const outcomes = await uploadImage(ctx, artifacts);

    assert.equal(outcomes[0].ok, true, outcomes[0].error);
    assert.equal(outcomes[0].references?.length, 2);
    for (const [tag, format, data] of [
      ['stable', 'qcow2', qcow2],
      ['stable-raw', 'raw', raw],
    ] as const) {
      const pulled = await pull(registry, `${registry.registry}/images/formats:${tag}`);
      assert.equal(pulled.manifest.artifactType, `application/vnd.image-factory.image.${format}`);
      assert.deepEqual(await pulled.blob(pulled.manifest.layers[0].digest), data);
    }
  });
});
