/**
 * Side (b) of the post-install bench, in a process of its own so that its
 * peak RSS is this project's alone: scrubImage + convertImage +
 * writeChecksum on a raw image, with a real Host and CleanupStack and a quiet
 * Reporter. Prints one JSON line (SideBResult) on stdout.
 *
 * Usage: node build/test/bench/side-b.js '<SideBInput as JSON>'
 */
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ImageSpec, ZeroFreeSpace } from '../../src/config/image-spec.js';
import { SystemHost } from '../../src/host/system-host.js';
import { writeChecksum } from '../../src/pipeline/checksum.js';
import type { BuildContext } from '../../src/context/build-context.js';
import { convertImage } from '../../src/pipeline/convert.js';
import { CleanupStack } from '../../src/pipeline/resources.js';
import { scrubImage, type ScrubResult } from '../../src/pipeline/scrub.js';
import { QuietReporter } from './lib/host.js';

export interface SideBInput {
  raw: string;
  qcow2: string;
  checksum: string;
  imageSize: number;
  zeroFreeSpace: ZeroFreeSpace;
}

export interface SideBResult {
  ok: boolean;
  error?: string;
  steps: { scrub: number; convert: number; checksum: number };
  /**
   * Milliseconds of two of the scrub's phases (its own clock, ScrubResult.phases): the appliance's start
   * (a VM boots, under TCG on a host without usable KVM) and the zeroing, which runs inside it, out of
   * reach of GNU time.
   */
  appliance: { launch: number; zeroing: number };
  /** This node process's peak RSS, KiB (process.resourceUsage().maxRSS). */
  maxRssKiB: number;
  scrub?: ScrubResult;
  digest?: string;
  warnings: string[];
  commands: string[];
  cleanupFailures: string[];
}

function specFor(input: SideBInput): ImageSpec {
  const dir = dirname(input.raw);
  return {
    name: 'bench',
    date: '2026-01-01',
    stem: 'bench-2026-01-01',
    outputDir: dir,
    cacheDir: dir,
    format: 'qcow2',
    formats: ['qcow2'],
    imageSize: input.imageSize,
    ramMiB: 1024,
    cores: 1,
    installer: {
      kind: 'image',
      image: { uri: '/dev/null', display: '/dev/null', scheme: 'file', location: '/dev/null' },
    },
    answerDelivery: 'inject',
    append: '',
    osinfo: 'linux2022',
    accelerator: 'auto',
    arch: 'x86_64',
    firmware: 'bios',
    installTimeoutMs: 60_000,
    stallTimeoutMs: 0,
    installerLogs: false,
    keepRaw: false,
    previousMetrics: [],
    skipUnchanged: false,
    zeroFreeSpace: input.zeroFreeSpace,
    generalize: 'no',
    compress: 'none',
    bootTest: { enabled: false, timeoutMs: 60_000, expect: 'login:', cloudInit: false, ramMiB: 512 },
    upload: false,
    uploads: [],
  };
}

async function main(): Promise<number> {
  const input = JSON.parse(process.argv[2] ?? '') as SideBInput;
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => controller.abort());
  const reporter = new QuietReporter();
  const host = new SystemHost(reporter, controller.signal);
  const cleanup = new CleanupStack(host.uninterruptible());
  const ctx: BuildContext = {
    spec: specFor(input),
    host,
    accelerator: 'tcg',
    reporter,
    cleanup,
    signal: controller.signal,
  };
  const result: SideBResult = {
    ok: false,
    steps: { scrub: NaN, convert: NaN, checksum: NaN },
    appliance: { launch: NaN, zeroing: NaN },
    maxRssKiB: 0,
    warnings: [],
    commands: [],
    cleanupFailures: [],
  };
  try {
    let t = performance.now();
    result.scrub = await scrubImage(ctx, input.raw);
    const scrubbed = performance.now();
    result.steps.scrub = scrubbed - t;
    const phase = (name: string): number => (result.scrub?.phases.find((p) => p.name === name)?.seconds ?? 0) * 1000;
    result.appliance = { launch: phase('launch'), zeroing: phase('zeroing') };
    t = performance.now();
    await convertImage(ctx, input.raw, input.qcow2, 'qcow2');
    result.steps.convert = performance.now() - t;
    t = performance.now();
    result.digest = await writeChecksum(ctx, input.qcow2, input.checksum);
    result.steps.checksum = performance.now() - t;
    result.ok = true;
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    result.cleanupFailures = await cleanup.unwind();
  }
  result.maxRssKiB = process.resourceUsage().maxRSS;
  result.warnings = reporter.warnings;
  result.commands = reporter.commands;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.ok && result.cleanupFailures.length === 0 ? 0 : 1;
}

process.exitCode = await main();
