/**
 * The artifact table: every file a build makes, its name from the stem, and
 * the orders of publishing, SHA256SUMS and the upload. What a build does with
 * them is checked on the recording host (recorded-steps.test.ts) and on the
 * servers (upload.test.ts); here, the orders the table gives.
 */
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import type { ImageSpec } from '../../src/config/image-spec.js';
import {
  ARTIFACTS,
  pathOf,
  plannedArtifacts,
  publishedArtifacts,
  publishOrder,
  stagedArtifacts,
  sumsOrder,
  uploadOrder,
  type Artifact,
} from '../../src/pipeline/artifacts.js';
import { screenshotPath } from '../../src/vm/screenshot.js';
import { testSpec } from '../support/build-context.js';
import { REPO_ROOT } from '../support/fixture.js';
import { assertGenerated, FILES_END, FILES_START, filesMarkdown } from '../support/outputs-markdown.js';

const OLD = { uri: '/old.json', display: '/old.json', scheme: 'file', location: '/old.json' } as const;
const every = testSpec({
  outputDir: '/images',
  format: 'qcow2',
  formats: ['qcow2', 'vmdk'],
  keepRaw: true,
  previousManifest: OLD,
  vnc: { listen: '127.0.0.1', port: 5901 },
});
const names = (files: readonly Artifact[]): string[] => files.map((file) => basename(file.final));
const suffixes = (files: readonly Artifact[]): string[] =>
  names(files).map((name) => name.replace('test-image-2026-01-01.', ''));

describe('the artifact table', () => {
  test('names every file of a build from its stem, each format its image and .sha256sum, in the folder', () => {
    const files = plannedArtifacts(every);
    assert.deepEqual(suffixes(files), [
      'qcow2',
      'qcow2.sha256sum',
      'vmdk',
      'vmdk.sha256sum',
      'raw',
      'manifest.json',
      'packages',
      'cdx.json',
      'changes',
      'metrics.json',
      'SHA256SUMS',
      'console.log',
      'screen.png',
    ]);
    assert.ok(files.every((file) => file.final.startsWith('/images/')));
    assert.deepEqual(new Set(names(files)).size, files.length, 'two roles share a name');
  });

  test('publishes the raw file, the images, the reports, then the checksums and SHA256SUMS last', () => {
    assert.deepEqual(suffixes(publishOrder(plannedArtifacts(every))), [
      'raw',
      'qcow2',
      'vmdk',
      'manifest.json',
      'packages',
      'cdx.json',
      'changes',
      'metrics.json',
      'qcow2.sha256sum',
      'vmdk.sha256sum',
      'SHA256SUMS',
    ]);
  });

  test('SHA256SUMS lists the images, the raw file and the reports, not the checksum files', () => {
    assert.deepEqual(suffixes(sumsOrder(plannedArtifacts(every))), [
      'qcow2',
      'vmdk',
      'raw',
      'manifest.json',
      'packages',
      'cdx.json',
      'changes',
      'metrics.json',
    ]);
  });

  test('uploads the images, the reports, their checksums and SHA256SUMS last; never the raw file nor the logs', () => {
    assert.deepEqual(suffixes(uploadOrder(plannedArtifacts(every))), [
      'qcow2',
      'vmdk',
      'manifest.json',
      'packages',
      'cdx.json',
      'changes',
      'metrics.json',
      'qcow2.sha256sum',
      'vmdk.sha256sum',
      'SHA256SUMS',
    ]);
  });

  test('a plain build has no raw file, no changes and no screenshot; raw as a format is the image itself', () => {
    const plain: ImageSpec = testSpec({ outputDir: '/out', format: 'raw' });
    assert.deepEqual(suffixes(plannedArtifacts(plain)), [
      'raw',
      'raw.sha256sum',
      'manifest.json',
      'packages',
      'cdx.json',
      'metrics.json',
      'SHA256SUMS',
      'console.log',
    ]);
    assert.equal(plannedArtifacts(plain)[0].role, 'image');
  });

  test('what is published is staged under the same name; the console log and the screenshot are written in place', () => {
    const files = stagedArtifacts(plannedArtifacts(every), '/images/.stage');
    for (const file of files) {
      const published = ARTIFACTS[file.role].publish !== undefined;
      assert.equal(file.staged, published ? `/images/.stage/${basename(file.final)}` : undefined, file.role);
    }
    assert.deepEqual(
      publishedArtifacts(files).map((file) => file.role),
      files.filter((file) => !['console-log', 'screenshot'].includes(file.role)).map((file) => file.role),
    );
  });

  test('the screenshot is named as the install watch saves it, beside the console log', () => {
    const files = plannedArtifacts(every);
    assert.equal(pathOf(files, 'screenshot'), screenshotPath(pathOf(files, 'console-log') as string));
  });

  test("docs/outputs.md's table of files is the artifact table", () => {
    assertGenerated(join(REPO_ROOT, 'docs', 'outputs.md'), FILES_START, FILES_END, filesMarkdown());
  });
});
