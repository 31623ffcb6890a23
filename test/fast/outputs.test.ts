/**
 * The action's outputs are declared once (src/action/outputs.ts, the files'
 * from the artifact table): action.yml, docs/outputs.md and what setOutputs
 * sets must all be that list.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { setOutputs } from '../../src/action/main.js';
import { OUTPUTS } from '../../src/action/outputs.js';
import type { ImageSpec } from '../../src/config/image-spec.js';
import { ARTIFACTS, artifactsOf, plannedArtifacts, type ArtifactRole } from '../../src/pipeline/artifacts.js';
import type { BuildResult } from '../../src/pipeline/build.js';
import { testSpec } from '../support/build-context.js';
import { REPO_ROOT } from '../support/fixture.js';
import { assertGenerated, OUTPUTS_END, OUTPUTS_START, outputsMarkdown } from '../support/outputs-markdown.js';

const DOCS = join(REPO_ROOT, 'docs', 'outputs.md');
const declared = (
  parseYaml(readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8')) as {
    outputs: Record<string, { description?: string }>;
  }
).outputs;
const descriptions = Object.fromEntries(Object.entries(declared).map(([name, out]) => [name, out.description ?? '']));
const names = OUTPUTS.map((output) => output.name);

const work = mkdtempSync(join(tmpdir(), 'outputs-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A finished build of this spec: every file it makes, with digests and sizes. */
function resultOf(spec: ImageSpec, more: Partial<BuildResult> = {}): BuildResult {
  const artifacts = plannedArtifacts(spec).filter((artifact) => !ARTIFACTS[artifact.role].onFailure);
  for (const [index, image] of artifactsOf(artifacts, 'image').entries()) {
    image.sha256 = String(index).repeat(64);
    image.size = 1000 + index;
  }
  return {
    artifacts,
    diskUsage: 512,
    packageCount: 3,
    distribution: 'Debian GNU/Linux 12',
    kernel: '6.1.0-18-amd64',
    accelerator: 'tcg',
    arch: spec.arch,
    firmware: spec.firmware,
    removedLogs: [],
    generalized: [],
    zeroing: 'discard',
    layout: { table: 'gpt', diskSize: 1, partitions: [], filesystems: [], leftAlone: [] },
    uploads: [
      { destination: 'mirror', target: 'host:/srv/', ok: true, attempts: 1, durationMs: 1, postUploadCommands: 0 },
    ],
    cacheHit: false,
    installer: { dir: '/cache', files: {}, downloaded: true },
    steps: [],
    changed: true,
    history: [],
    ...more,
  } as BuildResult;
}

/** What setOutputs wrote, as the runner reads GITHUB_OUTPUT back. */
function outputsOf(result: BuildResult): Map<string, string> {
  const file = join(work, `output-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, '');
  const saved = process.env.GITHUB_OUTPUT;
  process.env.GITHUB_OUTPUT = file;
  try {
    setOutputs(result);
  } finally {
    if (saved === undefined) delete process.env.GITHUB_OUTPUT;
    else process.env.GITHUB_OUTPUT = saved;
  }
  const found = new Map<string, string>();
  for (const block of readFileSync(file, 'utf8').matchAll(/^([^<\n]+)<<(\S+)\n([\s\S]*?)\n\2$/gm))
    found.set(block[1], block[3]);
  return found;
}

describe('the outputs', () => {
  test('are named once each, and every file the artifact table gives an output to is one of them', () => {
    assert.deepEqual(names, [...new Set(names)], 'an output is declared twice');
    const roles = (Object.keys(ARTIFACTS) as ArtifactRole[]).filter((role) => ARTIFACTS[role].output !== undefined);
    for (const role of roles) {
      const output = OUTPUTS.find((entry) => entry.name === ARTIFACTS[role].output);
      assert.equal(output?.role, role, `the output of ${role}`);
    }
    for (const output of OUTPUTS.filter((entry) => entry.role !== undefined)) {
      assert.equal(ARTIFACTS[output.role as ArtifactRole].output, output.name, `${output.name} is not its file's`);
    }
  });

  test('action.yml declares exactly them, each with a description', () => {
    assert.deepEqual(Object.keys(declared).sort(), [...names].sort());
    for (const name of names) assert.ok(descriptions[name].trim().length > 20, `${name} needs a description`);
  });

  test("docs/outputs.md's table between the markers lists them as the code and action.yml declare them", () => {
    const actual = assertGenerated(DOCS, OUTPUTS_START, OUTPUTS_END, outputsMarkdown(descriptions));
    const listed = [...actual.matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((match) => match[1]);
    assert.deepEqual(listed.sort(), Object.keys(declared).sort());
  });

  test('the README points to docs/outputs.md for them', () => {
    assert.match(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'), /\]\(docs\/outputs\.md\)/);
  });

  test('setOutputs sets every one for a build that made every file, each file output naming its file', () => {
    const spec = testSpec({
      outputDir: '/images',
      format: 'qcow2',
      formats: ['qcow2', 'vmdk'],
      keepRaw: true,
      previousManifest: { uri: '/old.json', display: '/old.json', scheme: 'file', location: '/old.json' },
      signing: { key: { path: '/keys/secret.asc' }, where: 'signing-key' },
    });
    const result = resultOf(spec, {
      bootSeconds: 12.34,
      cloudInitFinished: true,
      signingFingerprint: 'F'.repeat(40),
      bootChecks: [{ command: 'true', where: 'c:1', exitCode: 0, seconds: 0.42, lastLines: [] }],
    });
    const set = outputsOf(result);
    assert.deepEqual([...set.keys()].sort(), Object.keys(declared).sort());
    for (const output of OUTPUTS.filter((entry) => entry.role !== undefined)) {
      const file = result.artifacts.find((artifact) => artifact.role === output.role);
      assert.equal(set.get(output.name), file?.final, output.name);
    }
    assert.equal(set.get('image'), 'test-image-2026-01-01.qcow2');
    assert.equal(
      set.get('image-paths'),
      JSON.stringify(['/images/test-image-2026-01-01.qcow2', '/images/test-image-2026-01-01.vmdk']),
    );
    assert.equal(set.get('checksum-path'), '/images/test-image-2026-01-01.qcow2.sha256sum');
    assert.equal(set.get('sha256'), '0'.repeat(64));
    assert.equal(set.get('size'), '1000');
    assert.equal(set.get('boot-seconds'), '12.3');
    assert.equal(set.get('boot-test-checks'), JSON.stringify([{ command: 'true', exitCode: 0, seconds: 0.4 }]));
    assert.equal(set.get('uploaded'), JSON.stringify([{ destination: 'mirror', target: 'host:/srv/' }]));
  });

  test('a build without the raw image, a previous manifest, the boot test, boot checks or a signing key leaves their outputs unset', () => {
    const set = outputsOf(resultOf(testSpec({ outputDir: '/images' })));
    const unset = Object.keys(declared).filter((name) => !set.has(name));
    assert.deepEqual(unset.sort(), [
      'boot-seconds',
      'boot-test-checks',
      'changes-path',
      'checksums-signature-path',
      'raw-path',
      'signing-fingerprint',
    ]);
  });

  test('an unchanged build (skip-unchanged) sets changed=false and no path of a file it did not publish', () => {
    const spec = testSpec({ outputDir: '/images', skipUnchanged: true });
    const set = outputsOf(resultOf(spec, { changed: false, bootSeconds: 9.5 }));
    assert.equal(set.get('changed'), 'false');
    assert.equal(set.get('boot-seconds'), '9.5');
    for (const output of OUTPUTS.filter((entry) => entry.role !== undefined && entry.role !== 'console-log'))
      assert.ok(!set.has(output.name), `${output.name} names a file that was not published`);
    for (const name of ['image', 'sha256', 'size', 'uploaded']) assert.ok(!set.has(name), name);
    assert.equal(outputsOf(resultOf(spec)).get('changed'), 'true');
  });
});
