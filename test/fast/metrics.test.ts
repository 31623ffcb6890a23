import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { historyCharts, stepComparisonRows } from '../../src/action/metrics-charts.js';
import { renderSummary } from '../../src/action/summary.js';
import type { BuildResult } from '../../src/pipeline/build.js';
import {
  boundedHistory,
  comparisonText,
  HISTORY_LENGTH,
  parseMetrics,
  type BuildMetrics,
} from '../../src/supply-chain/metrics.js';
import { decideUnchanged } from '../../src/supply-chain/unchanged.js';
import type { PreviousManifest } from '../../src/supply-chain/changes.js';
import { REPO_ROOT } from '../support/fixture.js';
import { metricsSchemaErrors } from '../support/metrics-schema.js';

const GOLDEN = join(REPO_ROOT, 'test', 'golden', 'metrics');
const history = JSON.parse(readFileSync(join(GOLDEN, 'history.json'), 'utf8')) as BuildMetrics[];
const update = process.env.UPDATE_GOLDEN === '1';

/** The recorded file, or (UPDATE_GOLDEN=1) the file written anew. */
function golden(name: string, actual: string): void {
  const path = join(GOLDEN, name);
  if (update) writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'), `${name} differs (UPDATE_GOLDEN=1 rewrites it)`);
}

describe('the metrics', () => {
  test('the recorded history validates against docs/metrics.schema.json; a wrong field does not', () => {
    for (const build of history) assert.deepEqual(metricsSchemaErrors(build), [], build.image);
    const broken = structuredClone(history[0]) as unknown as Record<string, unknown>;
    broken.packages = -1;
    (broken.host as Record<string, unknown>).accelerator = 'hvf';
    delete broken.steps;
    const errors = metricsSchemaErrors(broken);
    assert.ok(
      errors.some((error) => /required property 'steps'/.test(error)),
      errors.join('\n'),
    );
    assert.ok(
      errors.some((error) => error.startsWith('/packages ')),
      errors.join('\n'),
    );
    assert.ok(
      errors.some((error) => error.startsWith('/host/accelerator ')),
      errors.join('\n'),
    );
  });

  test('parseMetrics takes a metrics file and says what is wrong with anything else', () => {
    assert.deepEqual(parseMetrics(JSON.stringify(history[1])), history[1]);
    assert.throws(() => parseMetrics('{'), /is not JSON/);
    assert.throws(() => parseMetrics('{"schema":"image-factory-metrics/2"}'), /is not a metrics file of schema/);
    const noSteps = { ...history[0], steps: [{ step: 'install', seconds: 'long' }] };
    assert.throws(() => parseMetrics(JSON.stringify(noSteps)), /has no "steps" list/);
  });

  test('a history keeps the last 12 builds in date order, one per image', () => {
    const many = Array.from({ length: 20 }, (_, index) => ({
      ...history[0],
      image: `img-2026-${String(index + 1).padStart(2, '0')}.qcow2`,
      date: `2026-${String(index + 1).padStart(2, '0')}`,
    }));
    const kept = boundedHistory([...many].reverse().concat(many[19]));
    assert.equal(kept.length, HISTORY_LENGTH);
    assert.deepEqual(
      kept.map((build) => build.date),
      many.slice(-HISTORY_LENGTH).map((build) => build.date),
    );
  });

  test('the Mermaid charts of a recorded history are the golden ones', () => {
    golden('charts.md', `${historyCharts(history)}\n`);
  });

  test('chart labels from an untrusted history cannot leave their quotes', () => {
    const forged = { ...history[0], date: '2026"]\n  bar [1]\n%%' };
    const text = historyCharts([forged, forged]);
    assert.match(text, /x-axis \["2026bar1", "2026bar1 #2"\]/);
    assert.equal(text.split('\n').filter((line) => line.startsWith('  bar ')).length, 3);
  });

  test("the steps beside the previous build's, in the summary and as the command's text", () => {
    const [previous, current] = history.slice(1);
    assert.deepEqual(stepComparisonRows(current, previous)[2], ['install', '9m59s', '10m55s', '-56.3 s']);
    golden('comparison.txt', `${comparisonText(current, previous)}\n`);
    const result = { changed: true, history: history.slice(0, 2), metrics: current } as unknown as BuildResult;
    const html = renderSummary({
      image: 'debian-12',
      steps: [],
      result: { ...result, ...summaryBase } as unknown as BuildResult,
    });
    assert.match(html, /<h3>The last 3 builds<\/h3>\n\n```mermaid\nxychart-beta\n/);
    assert.match(html, /<tr><td>install<\/td><td>9m59s<\/td><td>10m55s<\/td><td>-56.3 s<\/td><\/tr>/);
  });
});

/** What the summary's other sections read, for a result that only the history section is about. */
const summaryBase = {
  artifacts: [{ role: 'image', format: 'qcow2', final: '/images/debian-12-2026-03-01.qcow2', size: 1 }],
  layout: { table: 'gpt', diskSize: 1, partitions: [], filesystems: [], leftAlone: [] },
  generalized: [],
  uploads: [],
  installer: { dir: '/cache', files: {}, downloaded: true },
  distribution: 'Debian GNU/Linux 12',
  kernel: '6.1.0-18-amd64',
  packageCount: 1398,
  accelerator: 'tcg',
  arch: 'x86_64',
  firmware: 'bios',
  diskUsage: 1,
};

describe("skip-unchanged's decision", () => {
  const packages = [
    { name: 'bash', version: '5.2.15-2+b2', architecture: 'amd64' },
    { name: 'libc6', version: '2.36-9', architecture: 'amd64' },
  ];
  const inputs = [
    { role: 'installer-kernel' as const, name: 'linux', sha256: 'a'.repeat(64) },
    { role: 'answer-file' as const, name: '/srv/preseed.cfg', sha256: 'b'.repeat(64) },
  ];
  const previous: PreviousManifest = {
    source: '/out/img-2026-02-01.manifest.json',
    image: 'img-2026-02-01.qcow2',
    date: '2026-02-01',
    packageManager: 'dpkg',
    packages: [...packages].reverse(),
    inputs: inputs.map((input) => ({ ...input, name: `moved/${input.name}` })),
  };

  test('the same packages (in any order) and the same digests (under any name): unchanged', () => {
    const decision = decideUnchanged(previous, { packages, inputs });
    assert.deepEqual(decision, {
      unchanged: true,
      reason: 'the same 2 packages and 2 inputs as img-2026-02-01.qcow2',
    });
  });

  test('another version, another architecture, one more package, another digest: changed, and why', () => {
    const newer = [{ ...packages[0], version: '5.2.15-2+b3' }, packages[1]];
    assert.equal(
      decideUnchanged(previous, { packages: newer, inputs }).reason,
      '1 packages differ since img-2026-02-01.qcow2',
    );
    const i386 = [packages[0], { ...packages[1], architecture: 'i386' }];
    assert.equal(decideUnchanged(previous, { packages: i386, inputs }).unchanged, false);
    const more = [...packages, { name: 'curl', version: '7.88.1-10', architecture: 'amd64' }];
    assert.equal(decideUnchanged(previous, { packages: more, inputs }).unchanged, false);
    const answer = [inputs[0], { ...inputs[1], sha256: 'c'.repeat(64) }];
    assert.equal(
      decideUnchanged(previous, { packages, inputs: answer }).reason,
      'the inputs answer-file differ since img-2026-02-01.qcow2',
    );
    const provisioning = [...inputs, { role: 'provisioning' as const, name: 'site.yml', sha256: 'd'.repeat(64) }];
    assert.equal(decideUnchanged(previous, { packages, inputs: provisioning }).unchanged, false);
  });

  test('no previous manifest, or one without input digests (an older build): changed', () => {
    assert.equal(decideUnchanged(undefined, { packages, inputs }).unchanged, false);
    const older = { ...previous, inputs: undefined };
    assert.deepEqual(decideUnchanged(older, { packages, inputs }), {
      unchanged: false,
      reason: "/out/img-2026-02-01.manifest.json records no inputs' digests",
    });
  });
});
