import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from './checksum.js';
import type { BuildContext } from './context.js';
import type { FetchedInstaller, InstallerKey } from './fetch.js';
import type { Inventory } from './inventory.js';
import { checksumLines, manifestJson, packagesText, sbomJson, type BuildInput } from './manifest.js';
import type { OutputPaths, Staging } from './staging.js';

/** What the reports step wrote: the figures the outputs and the job summary show. */
export interface Reports {
  packageCount: number;
  distribution: string;
  kernel: string;
}

const ROLES: Record<InstallerKey, BuildInput['role']> = {
  linux: 'installer-kernel',
  initrd: 'installer-initrd',
  image: 'installer-image',
};

const sha256Of = (content: string | Buffer): string => createHash('sha256').update(content).digest('hex');

/** The installer's files and the answer file, with their SHA-256 (the verified one where the chain gave it). */
async function buildInputs(ctx: BuildContext, installer: FetchedInstaller): Promise<BuildInput[]> {
  const inputs: BuildInput[] = [];
  for (const key of Object.keys(ROLES) as InstallerKey[]) {
    const name = installer.files[key];
    if (!name) continue;
    const verified = installer.verification?.files[key]?.sha256;
    // A recorded build has no installer files to hash.
    const sha256 = verified ?? (ctx.host.live ? await sha256File(join(installer.dir, name)) : undefined);
    if (sha256) inputs.push({ role: ROLES[key], name, sha256 });
  }
  const answer = ctx.spec.answerFile;
  if (answer) inputs.push({ role: 'answer-file', name: answer.path, sha256: sha256Of(await readFile(answer.path)) });
  return inputs;
}

/**
 * Write the image's manifest, package list and CycloneDX SBOM into the
 * staging folder, and the list of every file's SHA-256 that publishImage
 * puts in place last.
 */
export async function writeReports(
  ctx: BuildContext,
  staging: Staging,
  paths: OutputPaths,
  outcome: { sha256: string; inventory: Inventory; installer: FetchedInstaller },
): Promise<Reports> {
  const { spec, host } = ctx;
  const { inventory } = outcome;
  const image = `${spec.stem}.${spec.format}`;
  const manifest = manifestJson(spec, image, inventory);
  const packages = packagesText(inventory);
  const inputs = await buildInputs(ctx, outcome.installer);
  const sbom = sbomJson(spec, { name: image, sha256: outcome.sha256 }, inventory, inputs);
  await host.writeFile(staging.manifest, manifest, 0o644);
  await host.writeFile(staging.packages, packages, 0o644);
  await host.writeFile(staging.sbom, sbom, 0o644);
  const files = [{ path: paths.image, sha256: outcome.sha256 }];
  if (paths.raw) files.push({ path: paths.raw, sha256: host.live ? await sha256File(staging.raw) : '' });
  files.push(
    { path: paths.manifest, sha256: sha256Of(manifest) },
    { path: paths.packages, sha256: sha256Of(packages) },
    { path: paths.sbom, sha256: sha256Of(sbom) },
  );
  await host.writeFile(staging.sums, checksumLines(files), 0o644);
  const release = inventory.osRelease;
  const reports: Reports = {
    packageCount: inventory.packages.length,
    distribution: release.PRETTY_NAME ?? release.ID ?? '',
    kernel: inventory.kernels.at(-1) ?? '',
  };
  ctx.reporter.info(
    `Wrote the manifest (${reports.packageCount} packages), the package list, the SBOM and the checksums of ${files.length} files`,
  );
  return reports;
}
