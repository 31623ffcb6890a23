/**
 * The package version orders against the package managers' own: dpkg
 * --compare-versions and rpm's Lua rpm.vercmp, on generated versions (needs
 * dpkg and rpm; the orders' own tables and properties are in test/fast).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { compareDebVersions, compareRpmVersions } from '../../src/supply-chain/version-compare.js';
import { generatedVersions } from '../support/generated-versions.js';

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

describe('package version order, as the package managers answer', () => {
  test('the same answers as dpkg --compare-versions on generated versions', () => {
    // dpkg refuses versions that do not start with a digit or hold `^`/`_`: only valid ones.
    const versions = generatedVersions(61, 40)
      .map((version) => version.replace(/[\^_]/g, '.'))
      .filter((version) => /^[0-9][A-Za-z0-9.+~-]*$/.test(version) && !version.endsWith('-'));
    const pairs = versions.slice(0, 20).flatMap((a) => versions.slice(20).map((b) => [a, b] as const));
    for (const [a, b] of pairs) {
      const less = spawnSync('dpkg', ['--compare-versions', a, 'lt', b]).status === 0;
      const equal = spawnSync('dpkg', ['--compare-versions', a, 'eq', b]).status === 0;
      assert.equal(sign(compareDebVersions(a, b)), less ? -1 : equal ? 0 : 1, `${a} vs ${b}`);
    }
  });

  test("the same answers as rpm's own rpm.vercmp on generated EVRs", () => {
    const versions = generatedVersions(62, 40).map((version, index) => (index % 5 === 0 ? `1:${version}` : version));
    const pairs = versions.slice(0, 20).flatMap((a) => versions.slice(20).map((b) => [a, b] as const));
    // One rpm run for every pair: its Lua prints the results, one a line (rpm's print adds no newline).
    const quote = (text: string): string => `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    const lua = pairs.map(([a, b]) => `print(rpm.vercmp(${quote(a)}, ${quote(b)}) .. "\\n")`).join(' ');
    const run = spawnSync('rpm', ['--eval', `%{lua: ${lua}}`], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const answers = run.stdout.trim().split('\n').map(Number);
    assert.equal(answers.length, pairs.length);
    pairs.forEach(([a, b], index) => {
      assert.equal(sign(compareRpmVersions(a, b)), answers[index], `${a} vs ${b}`);
    });
  });
});
