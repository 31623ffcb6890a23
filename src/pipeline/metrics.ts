import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import type { Step } from '../common/reporter.js';
import type { BuildContext } from '../context/build-context.js';
import { libvirtUri, virtInstallVersion } from '../host/libvirt.js';
import { redactSecrets } from '../common/credentials.js';
import { specSecrets } from '../config/image-spec.js';
import type { ProvisionResult } from './provision.js';
import { emulatorRequirement } from '../host/programs.js';
import { METRICS_SCHEMA, type BuildMetrics, type InstallPhases } from '../supply-chain/metrics.js';
import { artifactsOf, firstImage, stagedPath, type Artifact } from './artifacts.js';

/** What the steps measured before the reports step, for the metrics file. */
export interface MeasuredFigures {
  steps: ReadonlyArray<{ step: Step; durationMs: number }>;
  install: InstallPhases;
  /** Bytes the raw disk took on disk after the install (what the installer wrote) and after the scrub. */
  allocatedAfterInstall: number;
  allocatedAfterScrub: number;
  applianceLaunchSeconds: number;
  packages: number;
  /** The provision step's own times, when it ran. */
  provision?: ProvisionResult;
}

/** The first version number a program prints for `--version` (or virsh's `version`); unknown when it cannot. */
async function versionOf(ctx: BuildContext, argv: string[]): Promise<string> {
  const result = await ctx.host.run(argv, { allowFailure: true, quiet: true, readOnly: true, captureStdout: true });
  if (result.exitCode !== 0) return 'unknown';
  return /(\d+\.\d+(?:\.\d+)?)/.exec(result.stdout)?.[1] ?? 'unknown';
}

/** The versions of the tools that made the image: qemu, libvirt (the daemon's), virt-install and libguestfs. */
async function toolVersions(ctx: BuildContext): Promise<BuildMetrics['host']['versions']> {
  const { host, spec } = ctx;
  const libvirt = await ctx.host.run(['virsh', '-c', libvirtUri(host), 'version', '--daemon'], {
    allowFailure: true,
    quiet: true,
    readOnly: true,
    captureStdout: true,
  });
  return {
    qemu: await versionOf(ctx, [emulatorRequirement(spec.arch).programs[0], '--version']),
    libvirt: /Running against daemon:.*?(\d+\.\d+\.\d+)/.exec(libvirt.stdout)?.[1] ?? 'unknown',
    virtInstall: /(\d+\.\d+(?:\.\d+)?)/.exec(await virtInstallVersion(host))?.[1] ?? 'unknown',
    libguestfs: await versionOf(ctx, ['guestfish', '--version']),
  };
}

/** Each image's size and the bytes it takes on disk, from its staged file. */
async function imageSizes(ctx: BuildContext, artifacts: readonly Artifact[]): Promise<BuildMetrics['images']> {
  const images: BuildMetrics['images'] = [];
  for (const image of artifactsOf(artifacts, 'image')) {
    const info = await ctx.host.stat(stagedPath(image));
    images.push({ format: image.format ?? '', size: info.size, allocated: info.blocks * 512 });
  }
  return images;
}

/** The provisioning boot's times; a provisioner is named by its line, any secret of the build masked. */
function provisionFigures(ctx: BuildContext, result: ProvisionResult): NonNullable<BuildMetrics['provision']> {
  const secrets = specSecrets(ctx.spec);
  return {
    toSshSeconds: result.toSshSeconds,
    provisioners: result.provisioners.map(({ provisioner, seconds }) => ({
      provisioner: redactSecrets(provisioner, secrets),
      seconds,
    })),
    powerOffSeconds: result.powerOffSeconds,
  };
}

/** The build's metrics (docs/metrics.md): the steps' own timings, the disk's allocation, the host. */
export async function collectMetrics(
  ctx: BuildContext,
  artifacts: readonly Artifact[],
  figures: MeasuredFigures,
): Promise<BuildMetrics> {
  const { spec } = ctx;
  const first = firstImage(artifacts);
  return {
    schema: METRICS_SCHEMA,
    image: basename(first.final),
    name: spec.name,
    date: spec.date,
    arch: spec.arch,
    format: spec.format,
    steps: figures.steps.map(({ step, durationMs }) => ({ step, seconds: durationMs / 1000 })),
    install: { ...figures.install, writtenBytes: figures.allocatedAfterInstall },
    scrub: {
      applianceLaunchSeconds: figures.applianceLaunchSeconds,
      allocatedBefore: figures.allocatedAfterInstall,
      allocatedAfter: figures.allocatedAfterScrub,
    },
    ...(figures.provision ? { provision: provisionFigures(ctx, figures.provision) } : {}),
    images: await imageSizes(ctx, artifacts),
    packages: figures.packages,
    host: { accelerator: ctx.accelerator, cpus: availableParallelism(), versions: await toolVersions(ctx) },
    // maxRSS is in KiB.
    peakMemoryBytes: process.resourceUsage().maxRSS * 1024,
  };
}
