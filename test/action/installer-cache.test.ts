import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Input } from '../../src/action/constants.js';
import { readInputs } from '../../src/action/inputs.js';
import { InstallerCache, installerKeyPrefix } from '../../src/action/installer-cache.js';
import { resolveActionSpec } from '../../src/action/resolve-spec.js';
import type { Reporter } from '../../src/pipeline/reporter.js';
import { removeRunnerDirs, runMain } from '../support/action-runner.js';
import { CacheService } from '../support/cache-service.js';
import { ensureFixtureInstaller, writeFixtureConfig } from '../support/fixture.js';
import { fixtureInputs, isolatedConfig, removeWorkDirs, workDir } from './fixture-build.js';

after(() => {
  removeWorkDirs();
  removeRunnerDirs();
});

interface ServedRequest {
  method: string;
  path: string;
  status: number;
  userAgent: string;
}

/** A netboot mirror on 127.0.0.1: files with ETag and Last-Modified, answering conditional requests with 304. */
class InstallerMirror {
  readonly requests: ServedRequest[] = [];
  private readonly files = new Map<string, { body: Buffer; etag: string; lastModified: string }>();
  private server?: Server;
  private version = 0;
  url = '';

  serve(path: string, body: Buffer): void {
    this.version += 1;
    this.files.set(path, {
      body,
      etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`,
      // A later second for every new file, so that If-Modified-Since tells them apart too.
      lastModified: new Date(Date.UTC(2026, 0, 1, 0, 0, this.version)).toUTCString(),
    });
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const file = this.files.get(req.url ?? '');
      const record = (status: number): void => {
        this.requests.push({
          method: req.method ?? '',
          path: req.url ?? '',
          status,
          userAgent: String(req.headers['user-agent'] ?? ''),
        });
      };
      if (!file) {
        record(404);
        res.writeHead(404).end();
        return;
      }
      const headers = { ETag: file.etag, 'Last-Modified': file.lastModified };
      const ifNoneMatch = req.headers['if-none-match'];
      const ifModifiedSince = req.headers['if-modified-since'];
      const unchanged =
        ifNoneMatch !== undefined
          ? ifNoneMatch === file.etag
          : ifModifiedSince !== undefined && Date.parse(ifModifiedSince) >= Date.parse(file.lastModified);
      if (unchanged) {
        record(304);
        res.writeHead(304, headers).end();
        return;
      }
      record(200);
      res.writeHead(200, { ...headers, 'Content-Length': file.body.length });
      res.end(req.method === 'HEAD' ? undefined : file.body);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const KEY = /^image-factory-installer-action-cache-([0-9a-f]{16})-([0-9a-f]{16})$/;

describe('the installer cache, through @actions/cache against a stand-in cache service', () => {
  const service = new CacheService();
  const mirror = new InstallerMirror();
  before(async () => {
    await service.start();
    await mirror.start();
  });
  after(async () => {
    await service.stop();
    await mirror.stop();
  });

  test('the first build saves the installer, a fresh runner restores it without downloading, a new upstream initrd makes a new entry', async () => {
    const fixture = ensureFixtureInstaller();
    const initrd = readFileSync(join(fixture, 'initrd.gz'));
    mirror.serve('/netboot/vmlinuz', readFileSync(join(fixture, 'vmlinuz')));
    mirror.serve('/netboot/initrd.gz', initrd);
    const dir = workDir('cache');
    const cacheDir = join(dir, 'cache');
    const { config, image } = writeFixtureConfig(dir, {
      name: 'action-cache',
      keys: { linux: `${mirror.url}/netboot/vmlinuz`, initrd: `${mirror.url}/netboot/initrd.gz`, cache_dir: cacheDir },
    });
    const env = { ...isolatedConfig(dir), ...service.env() };
    const build = async (name: string) => {
      // Each build writes its own files: the image's name carries only the date.
      const outputDir = join(dir, name);
      mkdirSync(outputDir);
      const fromMirror = mirror.requests.length;
      const fromService = service.requests.length;
      const run = await runMain(fixtureInputs(outputDir, config, image), { env });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.deepEqual(run.annotations, [], 'the cache service works: no warning');
      const installerGets = mirror.requests.slice(fromMirror).filter((request) => request.method === 'GET');
      return { run, installerGets, cacheRequests: service.since(fromService) };
    };
    const downloaded = (gets: ServedRequest[]): string[] =>
      gets
        .filter((get) => get.status === 200)
        .map((get) => get.path)
        .sort();

    // 1. A fresh runner: nothing in the cache, both files downloaded (by the project's downloader,
    // no HEAD), the folder saved.
    const first = await build('first');
    assert.equal(first.run.outputs['cache-hit'], 'false');
    assert.deepEqual(downloaded(first.installerGets), ['/netboot/initrd.gz', '/netboot/vmlinuz']);
    assert.ok(
      first.installerGets.every((get) => get.userAgent === 'image-factory'),
      JSON.stringify(first.installerGets),
    );
    assert.ok(!mirror.requests.some((request) => request.method === 'HEAD'), 'no HEAD request for validators');
    assert.ok(
      first.cacheRequests.some(
        (r) => r.method === 'GET' && r.path.startsWith('/_apis/artifactcache/cache?') && r.status === 204,
      ),
      'looked up, found nothing',
    );
    assert.equal(service.committed().length, 1);
    const savedKey = service.committed()[0].key;
    assert.match(savedKey, KEY);
    assert.ok(first.run.stdout.includes(`Saved the installer files to the Actions cache as ${savedKey}.`));

    // 2. Another fresh runner (the local cache folder is gone): restored, revalidated (304),
    // nothing downloaded or saved.
    rmSync(cacheDir, { recursive: true, force: true });
    const second = await build('second');
    assert.equal(second.run.outputs['cache-hit'], 'true');
    assert.deepEqual(downloaded(second.installerGets), []);
    assert.deepEqual(second.installerGets.map((get) => `${get.path} ${get.status}`).sort(), [
      '/netboot/initrd.gz 304',
      '/netboot/vmlinuz 304',
    ]);
    assert.ok(
      second.cacheRequests.some(
        (r) => r.method === 'GET' && r.path === `/archives/${service.committed()[0].id}` && r.status === 200,
      ),
      'the archive was downloaded',
    );
    assert.ok(!second.cacheRequests.some((r) => r.method === 'POST'), 'nothing was reserved or committed');
    assert.match(
      second.run.stdout,
      new RegExp(`Restored the installer files from the Actions cache \\(${savedKey}\\)`),
    );
    assert.ok(second.run.summary.includes(`<code>${savedKey}</code>`), second.run.summary);

    // 3. Upstream publishes a new initrd under the same URL (zero padding after the gzip
    //    member: different bytes and ETag, and the kernel skips it). The old entry is
    //    restored by its prefix, the initrd downloaded again, and a new entry saved.
    rmSync(cacheDir, { recursive: true, force: true });
    mirror.serve('/netboot/initrd.gz', Buffer.concat([initrd, Buffer.alloc(4096)]));
    const third = await build('third');
    assert.equal(third.run.outputs['cache-hit'], 'false');
    assert.deepEqual(downloaded(third.installerGets), ['/netboot/initrd.gz']);
    assert.deepEqual(
      third.installerGets.filter((get) => get.path === '/netboot/vmlinuz').map((get) => get.status),
      [304],
    );
    assert.equal(service.committed().length, 2);
    const newKey = service.committed()[1].key;
    assert.match(newKey, KEY);
    assert.notEqual(newKey, savedKey);
    assert.equal(KEY.exec(newKey)?.[1], KEY.exec(savedKey)?.[1], 'same URLs, same prefix');
  });
});

describe('the installer cache without a cache service', () => {
  test('warns once and carries on; URLs decide the key prefix', async () => {
    const saved = { ...process.env };
    delete process.env.ACTIONS_CACHE_URL;
    delete process.env.ACTIONS_RESULTS_URL;
    delete process.env.IMAGE_FACTORY_CONFIG;
    try {
      const specFor = (linux: string) =>
        resolveActionSpec(
          readInputs(
            (name) =>
              ({
                [Input.Image]: 'remote',
                [Input.ConfigText]: `[remote]\nlinux = ${linux}\ninitrd = https://mirror.example/initrd.gz\n`,
                [Input.InstallDependencies]: 'false',
                [Input.Upload]: 'false',
                [Input.OutputDir]: '/tmp',
              })[name as string] ?? '',
          ),
        );
      const spec = specFor('https://mirror.example/linux');
      const messages: string[] = [];
      const reporter: Reporter = {
        info: () => undefined,
        notice: () => undefined,
        warning: (message) => messages.push(message),
        error: (message) => messages.push(message),
        command: () => undefined,
        output: () => undefined,
        stepStarted: () => undefined,
        stepFinished: () => undefined,
        progress: () => undefined,
      };
      const cache = new InstallerCache(spec, reporter);
      assert.equal(cache.active, false);
      await cache.restore();
      await cache.save({ dir: spec.cacheDir, files: {}, downloaded: true });
      assert.deepEqual(messages, [
        'The GitHub Actions cache service is not available to this job (no ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL): the installer files are downloaded and not cached.',
      ]);

      const prefix = installerKeyPrefix(spec);
      assert.match(prefix ?? '', /^image-factory-installer-remote-[0-9a-f]{16}-$/);
      assert.notEqual(
        installerKeyPrefix(specFor('https://mirror.example/linux-6.12')),
        prefix,
        'a changed URL never matches an old entry',
      );
    } finally {
      process.env = saved;
    }
  });
});
