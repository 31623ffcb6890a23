import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { sha256File } from './checksum.js';
import type { BuildContext } from '../context/build-context.js';
import type { FetchedInstaller, InstallerKey } from './fetch.js';
import type { Inventory } from '../guest/inventory.js';
import { checksumLines, manifestJson, packagesText, sbomJson, type BuildInput } from '../supply-chain/manifest.js';
import { artifactOf, firstImage, stagedPath, sumsOrder, type Artifact, type ArtifactRole } from './artifacts.js';
import {
  changeCounts,
  changesText,
  compareManifests,
  noChangesText,
  sizeChange,
  type Changes,
} from '../supply-chain/changes.js';
import type { LoadedPrevious } from '../supply-chain/previous-manifest.js';
import { signChecksumList } from '../supply-chain/sign.js';
import { metricsJson, type BuildMetrics } from '../supply-chain/metrics.js';
import { collectMetrics, type MeasuredFigures } from './metrics.js';
import { provisioningInputs } from './provision-inputs.js';
import { specSecrets } from '../config/image-spec.js';

/** What the reports step wrote: the figures the outputs and the job summary show. */
export interface Reports {
  packageCount: number;
  distribution: string;
  kernel: string;
  /** What changed since the previous manifest, when one was compared. */
  changes?: Changes;
  /** The fingerprint of the key that signed SHA256SUMS (signing-key). */
  signingFingerprint?: string;
  /** The inputs and their SHA-256, as the manifest records them. */
  inputs: BuildInput[];
  metrics: BuildMetrics;
}

const ROLES: Record<InstallerKey, BuildInput['role']> = {
  linux: 'installer-kernel',
  initrd: 'installer-initrd',
  image: 'installer-image',
};

const sha256Of = (content: string | Buffer): string => createHash('sha256').update(content).digest('hex');

/**
 * The installer's files and the answer file, with their SHA-256 (the verified one where the chain gave it),
 * then the provisioning's inputs as that step gives them.
 */
async function buildInputs(
  ctx: BuildContext,
  installer: FetchedInstaller,
  provisioning: readonly BuildInput[],
): Promise<BuildInput[]> {
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
  return [...inputs, ...provisioning];
}

/** The reports' texts, before they are written. */
interface ReportTexts {
  manifest: string;
  packages: string;
  sbom: string;
  changes?: string;
  metrics: string;
}

/**
 * Write the image's manifest, package list, CycloneDX SBOM and (with a
 * previous manifest) what changed into the staging folder, and the list of
 * every file's SHA-256 that publishImage puts in place last. Each report's
 * SHA-256 is recorded in the build's list of files.
 */
export async function writeReports(
  ctx: BuildContext,
  artifacts: readonly Artifact[],
  outcome: {
    inventory: Inventory;
    installer: FetchedInstaller;
    previous?: LoadedPrevious;
    figures: Omit<MeasuredFigures, 'packages'>;
  },
): Promise<Reports> {
  const { spec, host } = ctx;
  const { inventory } = outcome;
  const first = firstImage(artifacts);
  const image = basename(first.final);
  const imageSize = (await host.stat(stagedPath(first))).size;
  const inputs = await buildInputs(ctx, outcome.installer, await provisioningInputs(spec.provision, specSecrets(spec)));
  const metrics = await collectMetrics(ctx, artifacts, { ...outcome.figures, packages: inventory.packages.length });
  const texts: ReportTexts = {
    manifest: manifestJson(spec, { name: image, size: imageSize }, inventory, inputs),
    packages: packagesText(inventory),
    sbom: sbomJson(spec, { name: image, sha256: first.sha256 ?? '' }, inventory, inputs),
    metrics: metricsJson(metrics),
  };
  const changes = describeChanges(ctx, outcome.previous, { image, imageSize, inventory });
  if (outcome.previous) texts.changes = changes ? changesText(changes) : noChangesTextOf(image, outcome.previous);
  const count = await writeTexts(ctx, artifacts, texts);
  const release = inventory.osRelease;
  const reports: Reports = {
    packageCount: inventory.packages.length,
    distribution: release.PRETTY_NAME ?? release.ID ?? '',
    kernel: inventory.kernels.at(-1) ?? '',
    changes,
    inputs,
    metrics,
  };
  ctx.reporter.info(
    `Wrote the manifest (${reports.packageCount} packages), the package list, the SBOM${texts.changes ? ', the changes' : ''}, the metrics and the checksums of ${count} files`,
  );
  const sums = artifactOf(artifacts, 'sums');
  const signature = artifactOf(artifacts, 'sums-signature');
  if (spec.signing && sums && signature) {
    const fingerprint = await signChecksumList(ctx, spec.signing, stagedPath(sums), stagedPath(signature));
    reports.signingFingerprint = fingerprint;
    ctx.reporter.info(`Signed ${basename(sums.final)} with key ${fingerprint} into ${basename(signature.final)}`);
  }
  return reports;
}

function noChangesTextOf(image: string, previous: LoadedPrevious): string {
  return 'unavailable' in previous ? noChangesText(image, previous.source, previous.unavailable) : '';
}

/** The comparison with the previous manifest, logged: the counts, the size change, each package changed. */
function describeChanges(
  ctx: BuildContext,
  previous: LoadedPrevious | undefined,
  current: { image: string; imageSize: number; inventory: Inventory },
): Changes | undefined {
  if (!previous || !('manifest' in previous)) return undefined;
  const changes = compareManifests(previous.manifest, current);
  const { reporter } = ctx;
  reporter.info(`Changes since ${previous.manifest.image || previous.manifest.source}: ${changeCounts(changes)}`);
  reporter.info(`Image size: ${sizeChange(changes)}`);
  for (const entry of changes.added) reporter.info(`  added ${entry.name} ${entry.architecture} ${entry.version}`);
  for (const entry of changes.removed) reporter.info(`  removed ${entry.name} ${entry.architecture} ${entry.version}`);
  for (const [kind, list] of [
    ['upgraded', changes.upgraded],
    ['downgraded', changes.downgraded],
  ] as const) {
    for (const entry of list)
      reporter.info(`  ${kind} ${entry.name} ${entry.architecture} ${entry.from} -> ${entry.to}`);
  }
  return changes;
}

/** The texts into the staging folder, then SHA256SUMS over every file to publish; how many it lists. */
async function writeTexts(ctx: BuildContext, artifacts: readonly Artifact[], texts: ReportTexts): Promise<number> {
  const { host } = ctx;
  const reports: Array<[ArtifactRole, string | undefined]> = [
    ['manifest', texts.manifest],
    ['packages', texts.packages],
    ['sbom', texts.sbom],
    ['changes', texts.changes],
    ['metrics', texts.metrics],
  ];
  for (const [role, text] of reports) {
    const artifact = artifactOf(artifacts, role);
    if (!artifact || text === undefined) continue;
    await host.writeFile(stagedPath(artifact), text, 0o644);
    artifact.sha256 = sha256Of(text);
  }
  const raw = artifactOf(artifacts, 'raw');
  if (raw) raw.sha256 = host.live ? await sha256File(stagedPath(raw)) : '';
  const files = sumsOrder(artifacts).map((artifact) => ({ path: artifact.final, sha256: artifact.sha256 ?? '' }));
  const sums = artifactOf(artifacts, 'sums');
  if (sums) await host.writeFile(stagedPath(sums), checksumLines(files), 0o644);
  return files.length;
}
