/**
 * The installer cache scenarios that run against both cache services
 * @actions/cache speaks: the REST one of GitHub Enterprise Server ("v1",
 * cache-service.ts) and the results service with Azure Blob Storage that
 * github.com runners use ("v2", results-cache-service.ts with azurite).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMain } from '../support/action-runner.js';
import { CacheService } from '../support/cache-service.js';
import { ensureFixtureInstaller, writeFixtureConfig } from '../support/fixture.js';
import { ResultsCacheService } from '../support/results-cache-service.js';
import { fixtureInputs, isolatedConfig, workDir } from './fixture-build.js';
import { builtStem } from '../support/run-cli.js';

export interface ServedRequest {
  method: string;
  path: string;
  status: number;
  userAgent: string;
}

/** A netboot mirror on 127.0.0.1: files with ETag and Last-Modified, answering conditional requests with 304. */
export class InstallerMirror {
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

/** What one run asked of the cache service, in terms both protocols share. */
export interface CacheActivity {
  lookups: number;
  /** Lookups that found nothing. */
  misses: number;
  /** Archives downloaded (v2: distinct blobs read; the Azure SDK reads one in 4 MiB ranges). */
  archiveDownloads: number;
  /** Entries reserved or created. */
  creates: number;
  /** Body bytes sent to the service or blob storage (archive uploads, and for v1 the JSON too). */
  uploaded: number;
  /** Body bytes received from it (archive downloads, and for v1 the JSON too). */
  downloaded: number;
}

/** A cache service stand-in seen through what the scenarios assert. */
export interface CacheBackend {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  env(): Record<string, string>;
  /** Keys of the entries that can be restored, oldest first. */
  savedKeys(): string[];
  /** A position in the service's request log. */
  mark(): number;
  activity(since: number): CacheActivity;
}

/** The REST service of GitHub Enterprise Server (`_apis/artifactcache`). */
export function v1Backend(): CacheBackend {
  const service = new CacheService();
  return {
    name: 'the v1 REST cache service (GitHub Enterprise Server)',
    start: async () => void (await service.start()),
    stop: () => service.stop(),
    env: () => service.env(),
    savedKeys: () => service.committed().map((entry) => entry.key),
    mark: () => service.requests.length,
    activity: (since) => {
      const requests = service.since(since);
      const lookups = requests.filter((r) => r.method === 'GET' && r.path.startsWith('/_apis/artifactcache/cache?'));
      return {
        lookups: lookups.length,
        misses: lookups.filter((r) => r.status === 204).length,
        archiveDownloads: requests.filter(
          (r) => r.method === 'GET' && r.path.startsWith('/archives/') && r.status === 200,
        ).length,
        creates: requests.filter((r) => r.method === 'POST' && r.path === '/_apis/artifactcache/caches').length,
        ...service.bytes(since),
      };
    },
  };
}

/** The results service's cache RPCs with azurite for the bytes (github.com runners). */
export function v2Backend(service = new ResultsCacheService()): CacheBackend & { service: ResultsCacheService } {
  // Marks count RPCs and blob requests together: position = rpcs * 2^20 + blob requests.
  const SPLIT = 1 << 20;
  return {
    name: 'the v2 results cache service with Azure Blob Storage (github.com)',
    service,
    start: async () => void (await service.start()),
    stop: () => service.stop(),
    env: () => service.env(),
    savedKeys: () => service.finalized().map((entry) => entry.key),
    mark: () => service.rpcs.length * SPLIT + service.blobRequests.length,
    activity: (since) => {
      const rpcs = service.rpcs.slice(Math.floor(since / SPLIT));
      const blobs = service.blobRequests.slice(since % SPLIT);
      const lookups = rpcs.filter((r) => r.method === 'GetCacheEntryDownloadURL');
      return {
        lookups: lookups.length,
        misses: lookups.filter((r) => r.status === 200 && r.ok === false).length,
        archiveDownloads: new Set(
          blobs.filter((r) => r.method === 'GET' && (r.status === 200 || r.status === 206)).map((r) => r.path),
        ).size,
        creates: rpcs.filter((r) => r.method === 'CreateCacheEntry').length,
        ...service.bytes(since % SPLIT),
      };
    },
  };
}

export const KEY = /^image-factory-installer-action-cache-([0-9a-f]{16})-([0-9a-f]{16})$/;
/** The image's last manifest: per image, architecture and format, then the date and the run. */
export const MANIFEST_KEY = /^image-factory-manifest-action-cache-[a-z0-9_]+-qcow2-\d{4}-\d\d-\d\d-/;

/** Bytes per run, printed for the record (node --test shows diagnostics). */
export const bytesPerRun: Array<{ backend: string; run: string; uploaded: number; downloaded: number }> = [];

/**
 * Three fresh runners build the fixture image through the action's main
 * step: the first downloads and saves, the second restores and downloads
 * nothing, the third sees a new upstream initrd and saves a new entry.
 */
export function actionCacheScenario(backend: CacheBackend): void {
  describe(`the installer cache, through @actions/cache against ${backend.name}`, () => {
    const mirror = new InstallerMirror();
    before(async () => {
      await backend.start();
      await mirror.start();
    });
    after(async () => {
      await backend.stop();
      await mirror.stop();
    });

    test('the first build saves the installer, a fresh runner restores it without downloading, a new upstream initrd makes a new entry', async (t) => {
      const fixture = ensureFixtureInstaller();
      const initrd = readFileSync(join(fixture, 'initrd.gz'));
      mirror.serve('/netboot/vmlinuz', readFileSync(join(fixture, 'vmlinuz')));
      mirror.serve('/netboot/initrd.gz', initrd);
      const dir = workDir('cache');
      const cacheDir = join(dir, 'cache');
      const { config, image } = writeFixtureConfig(dir, {
        name: 'action-cache',
        keys: {
          linux: `${mirror.url}/netboot/vmlinuz`,
          initrd: `${mirror.url}/netboot/initrd.gz`,
          cache_dir: cacheDir,
        },
      });
      const env = { ...isolatedConfig(dir), ...backend.env() };
      const build = async (name: string) => {
        // Each build writes its own files: the image's name carries only the date.
        const outputDir = join(dir, name);
        mkdirSync(outputDir);
        const fromMirror = mirror.requests.length;
        const fromService = backend.mark();
        const run = await runMain(fixtureInputs(outputDir, config, image), { env });
        assert.equal(run.code, 0, run.stdout + run.stderr);
        // The fixture pins no checksums: the one warning an unverified installer gets, and no other.
        assert.deepEqual(
          run.annotations.map((annotation) => annotation.message.replace(/:.*/s, '')),
          [`the installer files of ${image} are not verified`],
          'the cache service works: no other warning',
        );
        const installerGets = mirror.requests.slice(fromMirror).filter((request) => request.method === 'GET');
        const cache = backend.activity(fromService);
        bytesPerRun.push({ backend: backend.name, run: name, uploaded: cache.uploaded, downloaded: cache.downloaded });
        t.diagnostic(
          `${name} run: ${cache.uploaded} B uploaded, ${cache.downloaded} B downloaded (cache service), ${run.durationMs} ms`,
        );
        return { run, installerGets, cache };
      };
      const installerKeys = (): string[] => backend.savedKeys().filter((key) => KEY.test(key));
      const manifestKeys = (): string[] => backend.savedKeys().filter((key) => MANIFEST_KEY.test(key));
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
      // Two lookups and two entries: the installer files and the image's last manifest.
      assert.equal(first.cache.lookups, 2);
      assert.equal(first.cache.misses, 2, 'looked up, found nothing');
      assert.equal(first.cache.creates, 2);
      assert.deepEqual(installerKeys().length, 1);
      assert.deepEqual(manifestKeys().length, 1);
      assert.equal(backend.savedKeys().length, 2);
      assert.equal(first.run.outputs['changes-path'], undefined, 'nothing to compare with on the first run');
      assert.ok(first.run.stdout.includes(`Saved the manifest to the Actions cache as ${manifestKeys()[0]}.`));
      const savedKey = installerKeys()[0];
      assert.match(savedKey, KEY);
      assert.ok(first.run.stdout.includes(`Saved the installer files to the Actions cache as ${savedKey}.`));
      assert.ok(first.cache.uploaded > 0);

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
      assert.equal(second.cache.archiveDownloads, 2, 'the installer archive and the manifest were downloaded');
      assert.equal(second.cache.creates, 1, "only this build's manifest was saved, not the installer again");
      // The first build's manifest, restored, is what the second compares with: the same system.
      const changesPath = join(dir, 'second', `${builtStem(second.run.stdout, image)}.changes`);
      assert.equal(second.run.outputs['changes-path'], changesPath);
      const changes = readFileSync(changesPath, 'utf8');
      assert.match(changes, /^Previous manifest: the Actions cache's image-factory-manifest-action-cache-/m);
      assert.match(changes, /^Packages: 3 -> 3 \(0 added, 0 removed, 0 upgraded, 0 downgraded\)$/m);
      assert.match(second.run.stdout, /Restored the last manifest from the Actions cache \(image-factory-manifest-/);
      assert.ok(second.run.summary.includes('<h3>Changes since '), second.run.summary);
      assert.equal(manifestKeys().length, 2);
      // The first build's metrics, kept beside its manifest: the second's summary charts both builds and
      // puts its steps beside the first's.
      assert.match(second.run.stdout, /Restored the last 1 builds' metrics from the Actions cache\./);
      assert.ok(second.run.summary.includes('<h3>The last 2 builds</h3>'), second.run.summary);
      assert.match(
        second.run.summary,
        /```mermaid\nxychart-beta\n {2}title "Build time \(s\)[^"]*"\n {2}x-axis \["([^"]+)", "\1 #2"\]\n/,
      );
      assert.match(second.run.summary, /<tr><td>install<\/td><td>[^<]+<\/td><td>[^<]+<\/td><td>[+-][^<]+<\/td><\/tr>/);
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
      assert.equal(installerKeys().length, 2);
      const newKey = installerKeys()[1];
      assert.match(newKey, KEY);
      assert.notEqual(newKey, savedKey);
      assert.equal(KEY.exec(newKey)?.[1], KEY.exec(savedKey)?.[1], 'same URLs, same prefix');
    });
  });
}
