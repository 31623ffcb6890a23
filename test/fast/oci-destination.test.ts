/**
 * An `oci` destination's configuration (bad input refused before anything is
 * created, exit 2), and the pieces of a push that need no registry: the
 * Docker config file, the authentication challenge, the containerDisk's tar
 * layer as GNU tar reads it. The push itself is in servers/oci-upload.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ConfigParser } from '../../src/config/configparser.js';
import { applyOverrides, resolveImageSpec, specSecrets } from '../../src/config/image-spec.js';
import { isLoopbackRegistry, parseOciReference } from '../../src/config/oci-destination.js';
import { dockerConfigCredentials } from '../../src/net/docker-config.js';
import { parseChallenge, piecesBlob, referrersTag } from '../../src/net/oci-registry.js';
import { singleFileTar } from '../../src/net/tar-layer.js';
import { looksLikeCrash, runMain } from '../support/in-process-cli.js';

const execFileAsync = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'oci-destination-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const out = join(scratch, 'out');
for (const name of ['vmlinuz', 'initrd', 'preseed.cfg']) writeFileSync(join(scratch, name), 'x');
const BASE =
  `[img]\nlinux = ${join(scratch, 'vmlinuz')}\ninitrd = ${join(scratch, 'initrd')}\n` +
  `preseed = ${join(scratch, 'preseed.cfg')}\ncache_dir = ${join(scratch, 'cache')}\nupload_destinations = reg\n`;

function spec(section: string, extra = ''): ReturnType<typeof resolveImageSpec> {
  const config = new ConfigParser();
  config.read(`${BASE}${extra}[reg]\nupload_type = oci\n${section}`, join(scratch, 'spec.conf'));
  const hadSection = applyOverrides(config, 'img', {});
  return resolveImageSpec(config, 'img', {
    outputDir: out,
    date: '2026-01-01',
    knownImages: [],
    hadSection,
    upload: true,
  });
}

let count = 0;
/** The command on a configuration with [reg]: exit 2, the messages, nothing created. */
async function refused(section: string, ...patterns: RegExp[]): Promise<void> {
  count += 1;
  const file = join(scratch, `c${count}.conf`);
  writeFileSync(file, `${BASE}[reg]\nupload_type = oci\n${section}`);
  const result = await runMain(['-o', out, '--dry-run', 'img'], { IMAGE_FACTORY_CONFIG: file, IMAGE: undefined });
  assert.ok(!looksLikeCrash(result.stderr), result.stderr);
  assert.equal(result.code, 2, result.stderr);
  for (const pattern of patterns) assert.match(result.stderr, pattern);
  assert.deepEqual(
    readdirSync(scratch).filter((name) => name === 'out'),
    [],
    'nothing is created',
  );
}

describe('upload_type = oci: the configuration', () => {
  test('REGISTRY/REPOSITORY[:TAG], with an optional scheme', () => {
    assert.deepEqual(parseOciReference('ghcr.io/org/images/debian:stable'), {
      registry: 'ghcr.io',
      repository: 'org/images/debian',
      tag: 'stable',
    });
    assert.deepEqual(parseOciReference('http://127.0.0.1:5000/golden'), {
      registry: '127.0.0.1:5000',
      repository: 'golden',
      scheme: 'http',
    });
    for (const bad of [
      'debian',
      'ghcr.io/Org/x',
      'ghcr.io/x:',
      'ghcr.io/x@sha256:00',
      'ghcr.io//x',
      'ftp://h/x',
      'h_st/x',
    ]) {
      assert.ok('problem' in parseOciReference(bad), bad);
    }
    assert.ok(
      isLoopbackRegistry('127.0.0.1:5000') && isLoopbackRegistry('localhost') && isLoopbackRegistry('[::1]:80'),
    );
    assert.ok(!isLoopbackRegistry('registry.local:5000') && !isLoopbackRegistry('10.0.0.1'));
  });

  test('the section resolves: tag, scheme, CA, credentials (masked), containerDisk', () => {
    const resolved = spec(
      'upload_target = registry.example.org/images/golden\nusername = ci\npassword = s3cr3t-pw\n' +
        'ca = /etc/ca.pem\noci-containerdisk = yes\npost-upload-command = echo ${reference}\n',
    );
    const destination = resolved.uploads[0];
    assert.equal(destination.type, 'oci');
    assert.deepEqual(destination.oci, {
      registry: 'registry.example.org',
      repository: 'images/golden',
      scheme: 'https',
      ca: '/etc/ca.pem',
      username: 'ci',
      password: 's3cr3t-pw',
      containerDisk: true,
    });
    assert.deepEqual(destination.postUploadCommands('x.qcow2', 'r/g:t@sha256:1'), [['echo', 'r/g:t@sha256:1']]);
    assert.ok(specSecrets(resolved).includes('s3cr3t-pw'));
    assert.equal(spec('upload_target = http://remote.example/x\ninsecure = yes\n').uploads[0].oci?.scheme, 'http');
  });

  test('bad input is refused with exit 2, naming the file, line and what is accepted', async () => {
    await refused(
      'upload_target = debian\n',
      /c[0-9]+\.conf:[0-9]+: \[reg\] upload_target: 'debian' is not an OCI reference/,
      /Accepted: \[http\[s\]:\/\/\]REGISTRY\/REPOSITORY\[:TAG\]/,
    );
    await refused('upload_target = ghcr.io/x@sha256:abc\n', /push to a tag/);
    await refused(
      'upload_target = http://registry.example.org/x\n',
      /plain http to registry\.example\.org.*insecure = yes/,
    );
    await refused('upload_target = r.example/x\ninsecure = maybe\n', /\[reg\] insecure: 'maybe' is not yes or no/);
    await refused('upload_target = r.example/x\nusername = u\n', /give username and password both/);
    await refused('upload_target = r.example/x\nca = ca.pem\n', /\[reg\] ca: 'ca.pem' is not an absolute path/);
  });

  test('--dry-run says what would be pushed, and sends nothing', async () => {
    const file = join(scratch, 'dry.conf');
    writeFileSync(file, `${BASE}[reg]\nupload_type = oci\nupload_target = registry.invalid/images/golden:v1\n`);
    const result = await runMain(['-o', out, '--dry-run', 'img'], { IMAGE_FACTORY_CONFIG: file, IMAGE: undefined });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /\[reg\] would push img-[0-9-]+\.raw to registry\.invalid\/images\/golden:v1/);
  });

  test('a containerDisk needs a qcow2 or raw image among the formats', () => {
    assert.throws(
      () => spec('upload_target = r.example/x\noci-containerdisk = yes\n', 'format = vmdk\n'),
      /containerDisk holds a qcow2 or raw image; the build makes vmdk/,
    );
  });
});

describe('upload_type = oci: credentials and challenges', () => {
  test("the Docker config file's auths, by host[:port] or URL, in $DOCKER_CONFIG; helpers are not run", async () => {
    const dir = mkdtempSync(join(scratch, 'docker-'));
    const auth = (text: string): string => Buffer.from(text).toString('base64');
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'registry.example:5000': { auth: auth('ci:pa:ss') },
          'https://index.docker.io/v1/': { auth: auth('hub:pw') },
          'https://other.example/v2/': { username: 'o', password: 'p' },
        },
        credHelpers: { 'helper.example': 'secretservice' },
      }),
    );
    const env = { DOCKER_CONFIG: dir };
    assert.deepEqual(await dockerConfigCredentials('registry.example:5000', env), {
      username: 'ci',
      password: 'pa:ss',
    });
    assert.deepEqual(await dockerConfigCredentials('docker.io', env), { username: 'hub', password: 'pw' });
    assert.deepEqual(await dockerConfigCredentials('other.example', env), { username: 'o', password: 'p' });
    assert.equal(await dockerConfigCredentials('helper.example', env), undefined);
    assert.equal(await dockerConfigCredentials('x', { DOCKER_CONFIG: join(scratch, 'none') }), undefined);
    writeFileSync(join(dir, 'config.json'), '{"auths": {"r": {"auth": "c2VjcmV0"}');
    await assert.rejects(dockerConfigCredentials('r', env), (error: Error) => !error.message.includes('c2VjcmV0'));
  });

  test('WWW-Authenticate challenges: Bearer with its realm, service and scope; Basic', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
      ),
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
      },
    );
    assert.deepEqual(parseChallenge('Basic realm="x \\"y\\""'), { scheme: 'basic', params: { realm: 'x "y"' } });
    assert.equal(referrersTag('sha256:abc'), 'sha256-abc');
  });
});

describe('upload_type = oci: the containerDisk layer', () => {
  test('GNU tar reads disk/ and the image, owned by 107:107; the blob reads back in any range', async () => {
    const image = join(scratch, 'golden.qcow2');
    const data = Buffer.from('qcow2 image bytes '.repeat(100));
    writeFileSync(image, data);
    const pieces = singleFileTar({
      folder: 'disk',
      name: 'golden.qcow2',
      path: image,
      size: data.length,
      uid: 107,
      gid: 107,
      mtime: 0,
    });
    const blob = await piecesBlob(pieces);
    assert.equal(blob.size % 512, 0);
    const chunks: Buffer[] = [];
    for (let start = 0; start < blob.size; start += 700) {
      for await (const chunk of blob.read(start, Math.min(start + 700, blob.size)) as AsyncIterable<Buffer>)
        chunks.push(chunk);
    }
    const tar = join(scratch, 'layer.tar');
    writeFileSync(tar, Buffer.concat(chunks));
    const { stdout } = await execFileAsync('tar', ['--numeric-owner', '-tvf', tar]);
    assert.match(
      stdout,
      /^dr-xr-xr-x 107\/107 +0 1970-01-01 00:00 disk\/\n-r--r--r-- 107\/107 +1800 1970-01-01 00:00 disk\/golden\.qcow2\n$/,
    );
    const extracted = mkdtempSync(join(scratch, 'x-'));
    await execFileAsync('tar', ['-xf', tar, '-C', extracted]);
    assert.deepEqual(await readFile(join(extracted, 'disk', 'golden.qcow2')), data);
  });

  test('a size past 8 GiB is written in base-256, as GNU tar reads it', async () => {
    const [headers] = singleFileTar({
      folder: 'disk',
      name: 'big.raw',
      path: '/dev/null',
      size: 9 * 2 ** 30,
      uid: 107,
      gid: 107,
      mtime: 0,
    }) as Buffer[];
    const tar = join(scratch, 'big.tar');
    writeFileSync(tar, headers);
    const listing = await execFileAsync('tar', ['--numeric-owner', '-tvf', tar]).catch(
      (error: { stdout: string }) => error,
    );
    assert.match(listing.stdout, /107\/107 +9663676416 .* disk\/big\.raw/);
  });
});
