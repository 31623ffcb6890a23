/**
 * The installer cache on the cache service of github.com runners (v2): the
 * results service's cache RPCs (a stand-in) with real Azure Blob Storage
 * (azurite). The save → restore flow runs the action's main step, as the v1
 * tests do; the failure scenarios drive the InstallerCache class and the
 * fetch step directly, without a VM build.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Input } from '../../src/action/constants.js';
import { readInputs } from '../../src/action/inputs.js';
import { InstallerCache } from '../../src/action/installer-cache.js';
import { resolveActionSpec } from '../../src/action/resolve-spec.js';
import type { ImageSpec } from '../../src/config/image-spec.js';
import { sha256File } from '../../src/pipeline/checksum.js';
import { fetchInstaller } from '../../src/pipeline/fetch.js';
import { removeRunnerDirs } from '../support/action-runner.js';
import '../support/blob-host.js';
import { testContext } from '../support/build-context.js';
import { ensureFixtureInstaller } from '../support/fixture.js';
import { ResultsCacheService } from '../support/results-cache-service.js';
import { removeWorkDirs, workDir } from './fixture-build.js';
import { actionCacheScenario, bytesPerRun, InstallerMirror, v2Backend } from './installer-cache-scenarios.js';

// A download @actions/cache gives up on leaves its segment timer armed (10
// minutes by default), which kept this file's process alive for 10 minutes
// after its tests; the action's main exits past it, this process cannot.
process.env.SEGMENT_DOWNLOAD_TIMEOUT_MINS = '1';

after(() => {
  removeWorkDirs();
  removeRunnerDirs();
  for (const row of bytesPerRun)
    console.log(`# bytes per run: ${row.backend}, ${row.run}: ${row.uploaded} B up, ${row.downloaded} B down`);
});

actionCacheScenario(v2Backend());

/** What @actions/core printed as annotations (it writes workflow commands to stdout) while `work` ran. */
async function annotationsOf<T>(work: () => Promise<T>): Promise<{ value: T; annotations: string[] }> {
  const annotations: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    for (const line of String(chunk).split('\n')) if (/^::(warning|error)/.test(line)) annotations.push(line);
    return (write as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    return { value: await work(), annotations };
  } finally {
    process.stdout.write = write;
  }
}

describe('the installer cache on the v2 service, step by step', () => {
  const service = new ResultsCacheService();
  const mirror = new InstallerMirror();
  const saved = { ...process.env };
  let dir = '';
  let vmlinuz: Buffer;
  let initrd: Buffer;

  before(async () => {
    await service.start();
    await mirror.start();
    const fixture = ensureFixtureInstaller();
    vmlinuz = readFileSync(join(fixture, 'vmlinuz'));
    initrd = readFileSync(join(fixture, 'initrd.gz'));
    mirror.serve('/netboot/vmlinuz', vmlinuz);
    mirror.serve('/netboot/initrd.gz', initrd);
    dir = workDir('cache-v2');
    // A github.com job's environment; blob-host.ts (imported above) resolves the blob host.
    Object.assign(process.env, service.env(), {
      RUNNER_TEMP: join(dir, 'runner-temp'),
      GITHUB_WORKSPACE: join(dir, 'workspace'),
    });
    mkdirSync(join(dir, 'runner-temp'));
    mkdirSync(join(dir, 'workspace'));
    delete process.env.NODE_OPTIONS;
    delete process.env.ACTIONS_CACHE_URL;
    delete process.env.IMAGE_FACTORY_CONFIG;
  });
  after(async () => {
    process.env = saved;
    await service.stop();
    await mirror.stop();
  });

  let images = 0;
  /** A fresh image (its own key prefix) whose installer comes from the mirror. */
  function newSpec(extra = ''): ImageSpec {
    images += 1;
    return resolveActionSpec(
      readInputs(
        (name) =>
          ({
            [Input.Image]: `v2-step-${images}`,
            [Input.ConfigText]: `[v2-step-${images}]\nlinux = ${mirror.url}/netboot/vmlinuz\ninitrd = ${mirror.url}/netboot/initrd.gz\ncache_dir = ${join(dir, 'cache')}\n${extra}`,
            [Input.InstallDependencies]: 'false',
            [Input.Upload]: 'false',
            [Input.OutputDir]: dir,
          })[name as string] ?? '',
      ),
    );
  }

  /** What main.ts does around the build: restore, fetch, save after a download. */
  async function run(spec: ImageSpec, afterRestore?: () => void) {
    const fromMirror = mirror.requests.length;
    const fromBlobs = service.blobRequests.length;
    const started = Date.now();
    const { value, annotations } = await annotationsOf(async () => {
      const { ctx, reporter } = testContext(spec);
      const cache = new InstallerCache(spec, ctx.reporter);
      await cache.restore();
      afterRestore?.();
      const installer = await fetchInstaller(ctx);
      if (installer.downloaded) await cache.save(installer);
      return { cache, installer, reporter };
    });
    // The fixture pins no checksums: the one warning an unverified installer gets is not counted.
    const warnings = [...annotations, ...value.reporter.lines.filter((line) => /^(warning|error):/.test(line))].filter(
      (warning) => !String(warning).includes('are not verified'),
    );
    const downloads = mirror.requests
      .slice(fromMirror)
      .filter((request) => request.method === 'GET' && request.status === 200)
      .map((request) => request.path)
      .sort();
    return { ...value, warnings, downloads, bytes: service.bytes(fromBlobs), ms: Date.now() - started };
  }

  async function assertIntact(spec: ImageSpec): Promise<void> {
    assert.equal(await sha256File(join(spec.cacheDir, 'vmlinuz')), await sha256Buffer(vmlinuz));
    assert.equal(await sha256File(join(spec.cacheDir, 'initrd.gz')), await sha256Buffer(initrd));
  }

  test('save, then restore on a fresh runner with nothing downloaded; the bytes each way', async (t) => {
    const spec = newSpec();
    const first = await run(spec);
    assert.deepEqual(first.warnings, []);
    assert.deepEqual(first.downloads, ['/netboot/initrd.gz', '/netboot/vmlinuz']);
    assert.ok(first.cache.savedKey);
    rmSync(spec.cacheDir, { recursive: true, force: true });
    const second = await run(spec);
    assert.deepEqual(second.warnings, []);
    assert.equal(second.cache.restoredKey, first.cache.savedKey);
    assert.deepEqual(second.downloads, []);
    assert.equal(second.installer.downloaded, false);
    await assertIntact(spec);
    const entry = service.finalized().find((candidate) => candidate.key === first.cache.savedKey);
    assert.equal(first.bytes.uploaded, entry?.size, 'the archive went up once, whole');
    assert.equal(second.bytes.downloaded, entry?.size, 'and came down once, whole');
    t.diagnostic(
      `archive ${entry?.size} B for ${vmlinuz.length + initrd.length} B of installer; save run ${first.bytes.uploaded} B up, restore run ${second.bytes.downloaded} B down`,
    );
  });

  test('an unreachable cache service: one warning, the installer is downloaded, nothing else fails', async (t) => {
    const port = await closedPort();
    process.env.ACTIONS_RESULTS_URL = `http://127.0.0.1:${port}/`;
    try {
      const spec = newSpec();
      const result = await run(spec);
      assert.equal(result.warnings.length, 1, result.warnings.join('\n'));
      assert.match(result.warnings[0], /restore/i);
      assert.deepEqual(result.downloads, ['/netboot/initrd.gz', '/netboot/vmlinuz']);
      assert.equal(result.cache.savedKey, undefined);
      await assertIntact(spec);
      t.diagnostic(`${result.ms} ms`);
    } finally {
      process.env.ACTIONS_RESULTS_URL = service.url;
    }
  });

  test('a cache service that answers errors: one warning, the installer is downloaded', async (t) => {
    // 503 is retried (five attempts, 3 s apart and growing): this takes about half a minute per call.
    service.failWith = { status: 503, code: 'unavailable', msg: 'the cache service is down' };
    try {
      const spec = newSpec();
      const result = await run(spec);
      assert.equal(result.warnings.length, 1, result.warnings.join('\n'));
      assert.deepEqual(result.downloads, ['/netboot/initrd.gz', '/netboot/vmlinuz']);
      assert.equal(result.cache.savedKey, undefined);
      await assertIntact(spec);
      t.diagnostic(`${result.ms} ms with retries`);
    } finally {
      service.failWith = undefined;
    }
  });

  test('an archive download cut short leaves nothing behind; the fetch step downloads', async () => {
    const spec = newSpec();
    const first = await run(spec);
    assert.ok(first.cache.savedKey);
    rmSync(spec.cacheDir, { recursive: true, force: true });
    // Every blob GET ends after 1 MiB: the Azure SDK resumes with ranged reads a few times, then gives up.
    service.cutDownloadsAfter = 1 << 20;
    let leftAfterRestore: string[] = [];
    let result;
    try {
      result = await run(spec, () => (leftAfterRestore = listFolder(spec.cacheDir)));
    } finally {
      service.cutDownloadsAfter = undefined;
    }
    assert.equal(result.cache.restoredKey, undefined);
    assert.deepEqual(leftAfterRestore, []);
    assert.equal(result.warnings.length, 1, result.warnings.join('\n'));
    assert.deepEqual(result.downloads, ['/netboot/initrd.gz', '/netboot/vmlinuz']);
    await assertIntact(spec);
  });

  /** Save the image's installer, damage the stored archive with `damage`, and restore on a fresh runner. */
  async function restoreDamaged(damage: (archive: Buffer) => Buffer) {
    const spec = newSpec();
    const first = await run(spec);
    const entry = service.finalized().find((candidate) => candidate.key === first.cache.savedKey);
    assert.ok(entry);
    await service.replaceArchive(entry, damage(await service.archive(entry)));
    rmSync(spec.cacheDir, { recursive: true, force: true });
    let leftAfterRestore: string[] = [];
    const result = await run(spec, () => (leftAfterRestore = listFolder(spec.cacheDir)));
    assert.equal(result.cache.restoredKey, undefined);
    assert.deepEqual(leftAfterRestore, [], 'nothing of the damaged archive is left for the fetch step');
    assert.deepEqual(result.downloads, ['/netboot/initrd.gz', '/netboot/vmlinuz'], 'nothing restored was trusted');
    await assertIntact(spec);
    return result;
  }

  test('a damaged archive that fails only at the end of its extraction leaves nothing behind', async () => {
    // One byte of the kernel changed, and the zstd frame's checksum (its last 4 bytes) left as
    // it was for the original: zstd writes everything out and finds the damage only at the end,
    // after tar has written the kernel whole in size; then tar fails. Without the clean-up, the
    // kernel and its validators stay, and the fetch step's conditional GET (304) keeps them.
    const result = await restoreDamaged((archive) => {
      const tar = execFileSync('zstd', ['-d', '-q', '-c'], { input: archive, maxBuffer: 1 << 30 });
      const original = execFileSync('zstd', ['-q', '-c', '--check'], { input: tar, maxBuffer: 1 << 30 });
      const at = tar.indexOf(vmlinuz.subarray(4096, 4096 + 64));
      assert.ok(at > 0);
      tar[at] ^= 0x01;
      const damaged = execFileSync('zstd', ['-q', '-c', '--check'], { input: tar, maxBuffer: 1 << 30 });
      original.copy(damaged, damaged.length - 4, original.length - 4);
      return damaged;
    });
    assert.equal(result.warnings.length, 1, result.warnings.join('\n'));
    assert.match(result.warnings[0], /Failed to restore/);
  });

  test('an archive that extracts cleanly but holds other bytes than its key says is not trusted', async () => {
    // Recompressed without zstd's checksum after one byte of the kernel changed: nothing in
    // @actions/cache notices; the key's digest does.
    const result = await restoreDamaged((archive) => {
      const tar = execFileSync('zstd', ['-d', '-q', '-c'], { input: archive, maxBuffer: 1 << 30 });
      const at = tar.indexOf(vmlinuz.subarray(4096, 4096 + 64));
      assert.ok(at > 0);
      tar[at] ^= 0x01;
      return execFileSync('zstd', ['-q', '-c', '--no-check'], { input: tar, maxBuffer: 1 << 30 });
    });
    assert.equal(result.warnings.length, 1, result.warnings.join('\n'));
    assert.match(result.warnings[0], /do not match their key/);
  });
});

async function sha256Buffer(data: Buffer): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(data).digest('hex');
}

function listFolder(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
