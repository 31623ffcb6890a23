import { basename } from 'node:path';
import { ARTIFACTS, artifactsOf, firstImage, pathOf, type ArtifactRole } from '../pipeline/artifacts.js';
import type { BuildResult } from '../pipeline/build.js';
import { generalizedOutput } from './generalized-output.js';

/** One output of the action, as action.yml declares it, and its value from a build's result. */
export interface OutputSpec {
  name: string;
  /** The role of the file whose path it is, for an output that names a file of the build. */
  role?: ArtifactRole;
  /** Its value; undefined: not set (a file this build did not make, a boot test that did not run). */
  value: (result: BuildResult) => string | undefined;
}

/** The output that names a file of the build (the first format's, for an image): named in the artifact table. */
function fileOutput(role: ArtifactRole): OutputSpec {
  const name = ARTIFACTS[role].output;
  if (name === undefined) throw new Error(`the artifact table names no output for ${role}`);
  return { name, role, value: (result) => pathOf(result.artifacts, role) };
}

const image = (result: BuildResult): ReturnType<typeof firstImage> => firstImage(result.artifacts);

/** Every output of the action, in the order the step sets them. */
export const OUTPUTS: readonly OutputSpec[] = [
  { name: 'image', value: (result) => basename(image(result).final) },
  fileOutput('image'),
  {
    name: 'image-paths',
    value: (result) => JSON.stringify(artifactsOf(result.artifacts, 'image').map((file) => file.final)),
  },
  { name: 'format', value: (result) => image(result).format },
  { name: 'size', value: (result) => String(image(result).size) },
  { name: 'disk-usage', value: (result) => String(result.diskUsage) },
  { name: 'sha256', value: (result) => image(result).sha256 },
  fileOutput('image-checksum'),
  fileOutput('raw'),
  fileOutput('manifest'),
  fileOutput('packages'),
  fileOutput('sbom'),
  fileOutput('sums'),
  fileOutput('sums-signature'),
  { name: 'signing-fingerprint', value: (result) => result.signingFingerprint },
  fileOutput('changes'),
  fileOutput('metrics'),
  { name: 'changed', value: (result) => String(result.changed) },
  { name: 'packages', value: (result) => String(result.packageCount) },
  { name: 'generalized', value: (result) => generalizedOutput(result.generalized).json },
  { name: 'generalized-left-out', value: (result) => String(generalizedOutput(result.generalized).leftOut) },
  { name: 'layout', value: (result) => JSON.stringify(result.layout) },
  fileOutput('console-log'),
  { name: 'accelerator', value: (result) => result.accelerator },
  { name: 'arch', value: (result) => result.arch },
  { name: 'firmware', value: (result) => result.firmware },
  {
    name: 'uploaded',
    value: (result) =>
      JSON.stringify(
        result.uploads.filter((upload) => upload.ok).map(({ destination, target }) => ({ destination, target })),
      ),
  },
  {
    name: 'upload-references',
    value: (result) =>
      JSON.stringify(
        result.uploads.flatMap(({ destination, references }) =>
          (references ?? []).map((reference) => ({ destination, reference })),
        ),
      ),
  },
  { name: 'cache-hit', value: (result) => String(result.cacheHit) },
  { name: 'boot-seconds', value: (result) => result.bootSeconds?.toFixed(1) },
  {
    name: 'boot-test-checks',
    value: (result) =>
      result.bootChecks &&
      JSON.stringify(
        result.bootChecks.map(({ command, exitCode, seconds }) => ({
          command,
          exitCode,
          seconds: +seconds.toFixed(1),
        })),
      ),
  },
];

/** What a build that skip-unchanged stopped before publishing still says: no file of it was published. */
const OUTPUTS_WHEN_UNCHANGED = new Set([
  'changed',
  'packages',
  'layout',
  'console-log',
  'accelerator',
  'arch',
  'firmware',
  'cache-hit',
  'boot-seconds',
]);

/** The outputs a build's result sets: all of them, or only those that hold when nothing was published. */
export function outputsOf(result: BuildResult): readonly OutputSpec[] {
  return result.changed ? OUTPUTS : OUTPUTS.filter((output) => OUTPUTS_WHEN_UNCHANGED.has(output.name));
}
