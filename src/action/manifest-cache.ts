import * as cache from '@actions/cache';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { arch } from 'node:os';
import { dirname, join } from 'node:path';
import type { ImageSpec } from '../config/image-spec.js';
import { parseManifest } from '../supply-chain/changes.js';
import { boundedHistory, metricsJson, parseMetrics, type BuildMetrics } from '../supply-chain/metrics.js';
import type { InstallerSource } from '../config/image-spec.js';
import type { Reporter } from '../common/reporter.js';

const KEY_PREFIX = 'image-factory-manifest';
const MANIFEST = 'manifest.json';
/** The last builds' metrics, one file each, oldest first: metrics-01.json … metrics-12.json. */
const METRICS = /^metrics-\d{2}\.json$/;

/**
 * `image-factory-manifest-<image>-<arch>-<format>-`: every saved manifest of
 * this image, architecture and format starts so, and the newest is restored
 * (the cache matches a restore key by prefix, newest first).
 */
export function manifestKeyPrefix(spec: ImageSpec, machine = arch()): string {
  // A cache key may not hold a comma.
  return `${KEY_PREFIX}-${spec.name.replace(/,/g, '_')}-${machine}-${spec.format}-`;
}

/**
 * The last manifest of each image kept in the GitHub Actions cache, so that a
 * monthly rebuild reports what changed without being told where the last
 * manifest is. Used only when `previous-manifest` is unset. Like the
 * installer cache, a convenience: a missing or failing service, or a
 * restored file that is not a manifest (the cache is not trusted), only
 * warns, and the build goes on without a comparison.
 */
export class ManifestCache {
  private readonly prefix: string;
  /**
   * The folder the cache saves and restores, beside the image's installer
   * cache folder (`<cache_dir>/.manifests/…`): the same path on every runner
   * that uses the same cache_dir, as it must be (the paths are part of an
   * entry's version), and not in a shared temporary folder.
   */
  private readonly dir: string;
  /** The entry restored, when its manifest is the one the build compares with. */
  restoredKey: string | undefined;
  /** The entry restored, whether its manifest or only its metrics are used. */
  private restoredEntry: string | undefined;
  savedKey: string | undefined;

  constructor(
    private readonly spec: ImageSpec,
    private readonly reporter: Reporter,
  ) {
    this.prefix = manifestKeyPrefix(spec);
    this.dir = join(dirname(spec.cacheDir), '.manifests', this.prefix.slice(0, -1));
  }

  /** Whether a cache service is there to keep the manifest in. */
  get available(): boolean {
    return cache.isFeatureAvailable();
  }

  /** Whether a restore takes part: the service is there and previous-manifest or previous-metrics is not given. */
  get active(): boolean {
    return (this.spec.previousManifest === undefined || this.spec.previousMetrics.length === 0) && this.available;
  }

  /**
   * The spec with the restored manifest as its previous-manifest and the
   * restored metrics as its previous-metrics, where the spec gives none.
   */
  async restore(): Promise<ImageSpec> {
    const spec = await this.restoreManifest();
    if (!this.restoredEntry || this.spec.previousMetrics.length) return spec;
    return { ...spec, previousMetrics: await this.restoredMetrics() };
  }

  /** The restored metrics files that are metrics (the cache is not trusted: the others only warn). */
  private async restoredMetrics(): Promise<InstallerSource[]> {
    const names = (await readdir(this.dir)).filter((name) => METRICS.test(name)).sort();
    const sources: InstallerSource[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      try {
        parseMetrics(await readFile(path, 'utf8'));
      } catch (error) {
        this.reporter.warning(
          `The metrics restored from the Actions cache (${name}) ${(error as Error).message}: left out.`,
        );
        continue;
      }
      sources.push({ uri: path, display: `the Actions cache's ${name}`, scheme: 'file', location: path });
    }
    if (sources.length)
      this.reporter.info(`Restored the last ${sources.length} builds' metrics from the Actions cache.`);
    return sources;
  }

  private async restoreManifest(): Promise<ImageSpec> {
    if (!this.active) return this.spec;
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    let restored: string | undefined;
    try {
      restored = await cache.restoreCache([this.dir], this.prefix, [this.prefix]);
    } catch (error) {
      if (error instanceof cache.ValidationError) throw error;
      this.reporter.warning(`Restoring the last manifest failed: ${(error as Error).message ?? String(error)}`);
      return this.spec;
    }
    if (restored === undefined) {
      this.reporter.info(`No manifest of an earlier build in the Actions cache (${this.prefix}*): nothing to compare.`);
      return this.spec;
    }
    const path = join(this.dir, MANIFEST);
    try {
      parseManifest(await readFile(path, 'utf8'), path);
    } catch (error) {
      this.reporter.warning(
        `The manifest restored from the Actions cache (${restored}) is not usable (${(error as Error).message}): nothing to compare.`,
      );
      return this.spec;
    }
    this.restoredEntry = restored;
    if (this.spec.previousManifest) return this.spec;
    this.restoredKey = restored;
    this.reporter.info(`Restored the last manifest from the Actions cache (${restored}): the build compares with it.`);
    const display = `the Actions cache's ${restored}`;
    return { ...this.spec, previousManifest: { uri: path, display, scheme: 'file', location: path } };
  }

  /**
   * Keep this build's manifest as the image's last one (also when
   * previous-manifest named another), and the last builds' metrics with it.
   */
  async save(manifestPath: string, history: readonly BuildMetrics[]): Promise<void> {
    if (!this.available) return;
    // A key is written once: each build's gets its own, and a restore takes the newest.
    const run = `${process.env.GITHUB_RUN_ID ?? ''}-${process.env.GITHUB_RUN_ATTEMPT ?? ''}`;
    const key = `${this.prefix}${this.spec.date}-${run === '-' ? String(Date.now()) : `${run}-${Date.now()}`}`;
    try {
      await rm(this.dir, { recursive: true, force: true });
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await copyFile(manifestPath, join(this.dir, MANIFEST));
      for (const [index, build] of boundedHistory(history).entries()) {
        const name = `metrics-${String(index + 1).padStart(2, '0')}.json`;
        await writeFile(join(this.dir, name), metricsJson(build), { mode: 0o600 });
      }
      const id = await cache.saveCache([this.dir], key);
      if (id === -1) {
        this.reporter.info(`The manifest was not saved to the Actions cache (${key}); see the lines above for why.`);
        return;
      }
    } catch (error) {
      if (error instanceof cache.ValidationError) throw error;
      this.reporter.warning(`Saving the manifest to the Actions cache failed: ${(error as Error).message}`);
      return;
    }
    this.savedKey = key;
    this.reporter.info(`Saved the manifest to the Actions cache as ${key}.`);
  }
}
