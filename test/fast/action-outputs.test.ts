/**
 * The step's outputs as the runner reads them back from GITHUB_OUTPUT. GitHub
 * refuses an output over 1 MB: a generalisation table of 15,000 files in the
 * guest's /tmp made 1.17 MB.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setOutputs } from '../../src/action/main.js';
import type { BuildResult } from '../../src/pipeline/build.js';

const work = mkdtempSync(join(tmpdir(), 'action-outputs-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The outputs in a GITHUB_OUTPUT file: `name<<delimiter`, the value, the delimiter. */
function outputsOf(path: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const block of readFileSync(path, 'utf8').matchAll(/^([^<\n]+)<<(\S+)\n([\s\S]*?)\n\2$/gm))
    found.set(block[1], block[3]);
  return found;
}

/** What setOutputs wrote for this generalisation table. */
function outputsFor(generalized: BuildResult['generalized']): Map<string, string> {
  const file = join(work, `output-${generalized.length}`);
  writeFileSync(file, '');
  const saved = process.env.GITHUB_OUTPUT;
  process.env.GITHUB_OUTPUT = file;
  try {
    setOutputs({
      artifacts: [{ role: 'image', format: 'qcow2', final: '/images/img.qcow2' }],
      layout: { table: 'gpt', partitions: [], filesystems: [], leftAlone: [] },
      uploads: [],
      generalized,
      changed: true,
    } as unknown as BuildResult);
  } finally {
    if (saved === undefined) delete process.env.GITHUB_OUTPUT;
    else process.env.GITHUB_OUTPUT = saved;
  }
  return outputsOf(file);
}

describe('the generalized output', () => {
  test('15,000 files in /tmp: the first rows within 1 MB, and generalized-left-out says how many more', () => {
    const rows: BuildResult['generalized'] = [
      { operation: 'machine-id', path: '/etc/machine-id', found: 'file', done: 'emptied' },
      ...Array.from({ length: 15_000 }, (_, i) => ({
        operation: 'tmp-files',
        path: `/tmp/${'x'.repeat(40)}-${i}`,
        found: 'file' as const,
        done: 'removed' as const,
      })),
    ];
    const outputs = outputsFor(rows);
    const json = outputs.get('generalized') ?? '';
    assert.ok(Buffer.byteLength(json) < 1_000_000, `${Buffer.byteLength(json)} bytes`);
    const shown = JSON.parse(json) as BuildResult['generalized'];
    assert.deepEqual(shown[0], rows[0]);
    assert.deepEqual(shown, rows.slice(0, shown.length));
    assert.equal(Number(outputs.get('generalized-left-out')), rows.length - shown.length);
    assert.ok(shown.length >= 1000 - 1);
  });

  test('paths of 4 KiB: fewer rows, still under 1 MB', () => {
    const rows = Array.from({ length: 2000 }, (_, i) => ({
      operation: 'tmp-files',
      path: `/tmp/${'\u00e9'.repeat(2000)}${i}`,
      found: 'file' as const,
      done: 'removed' as const,
    }));
    const outputs = outputsFor(rows);
    const json = outputs.get('generalized') ?? '';
    assert.ok(Buffer.byteLength(json) < 1_000_000, `${Buffer.byteLength(json)} bytes`);
    const shown = (JSON.parse(json) as unknown[]).length;
    assert.equal(Number(outputs.get('generalized-left-out')), 2000 - shown);
  });

  test('a table that fits is given whole, with 0 left out', () => {
    const rows: BuildResult['generalized'] = [
      { operation: 'machine-id', path: '/etc/machine-id', found: 'file', done: 'emptied' },
    ];
    const outputs = outputsFor(rows);
    assert.deepEqual(JSON.parse(outputs.get('generalized') ?? ''), rows);
    assert.equal(outputs.get('generalized-left-out'), '0');
  });
});
