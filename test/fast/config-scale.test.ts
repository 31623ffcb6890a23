/**
 * The configuration's cost grows with its size, not with its size squared:
 * ten thousand keys in a section (a 250 KB file) are read, checked for unknown keys,
 * interpolated and printed in well under a second of CPU time; lines of tens
 * of thousands of blanks and values of tens of thousands of `${` are read as
 * fast; and a section whose values together expand past a bound is refused.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigParser, dollarProblem } from '../../src/config/configparser.js';
import { suggestKey } from '../../src/config/unknown-keys.js';
import { runMain, type InProcessRun } from '../support/in-process-cli.js';

const scratch = mkdtempSync(join(tmpdir(), 'config-scale-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const out = join(scratch, 'out');
mkdirSync(out);
const kernel = join(scratch, 'vmlinuz');
const preseed = join(scratch, 'preseed.cfg');
writeFileSync(kernel, 'k');
writeFileSync(preseed, 'p');

/** Well under the second that the issue asks for; the quadratic code took minutes here. */
const CPU_BOUND_MS = 1000;
const KEYS = 10_000;

/** CPU milliseconds that `work` took (user and system: a loaded machine stretches the wall clock, not the work). */
function cpuMs(work: () => void): number {
  const before = process.cpuUsage();
  work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

/**
 * A buildable [img] with KEYS keys of its own, and a thousand each in
 * [DEFAULT] and [other]: chains of up to seven references, into another
 * section too, and keys that nothing uses (each an unknown-key warning with
 * a suggestion).
 */
function largeConfig(): string {
  const lines = ['[DEFAULT]'];
  for (let i = 0; i < 1000; i += 1) lines.push(`d${i} = ${i % 5 === 0 ? 'leaf' : `\${d${i - 1}}/x`}`);
  lines.push('[other]');
  for (let i = 0; i < 1000; i += 1) lines.push(`o${i} = \${d${i}}`);
  lines.push('[img]', `linux = ${kernel}`, `initrd = ${kernel}`, `preseed = ${preseed}`, `cache_dir = ${scratch}/c`);
  for (let i = 0; i < KEYS; i += 1)
    lines.push(`k${i} = ${i % 2 ? `\${other:o${i % 1000}}` : `\${k${i - 1 < 0 ? 1 : i - 1}}`}`);
  return `${lines.join('\n')}\n`;
}

async function runOn(text: string, argv: string[]): Promise<InProcessRun> {
  const file = join(scratch, `c${argv.join('')}.conf`);
  writeFileSync(file, text);
  return runMain(['-o', out, ...argv], { IMAGE_FACTORY_CONFIG: file, IMAGE: undefined });
}

describe('a configuration of ten thousand keys a section', () => {
  const text = largeConfig();

  test('--print-config prints it, each unknown key warned of, within a second of CPU time', async () => {
    const run = await runOn(text, ['--print-config', 'img']);
    assert.equal(run.code, 0, run.stderr.slice(-2000));
    // The even keys, and the last: nothing refers to them.
    assert.equal(run.stderr.match(/unknown key 'k\d+'/g)?.length, KEYS / 2 + 1);
    const printed = JSON.parse(run.stdout) as Record<string, string>;
    assert.equal(printed.k9999, 'leaf/x/x/x/x');
    assert.equal(printed.k9998, 'leaf/x/x');
    assert.ok(run.cpuMs < CPU_BOUND_MS, `took ${run.cpuMs.toFixed(0)} ms of CPU time`);
  });

  test('--dry-run resolves and plans the build within a second of CPU time', async () => {
    const run = await runOn(text, ['--dry-run', 'img']);
    assert.equal(run.code, 0, run.stderr.slice(-2000));
    assert.match(run.stderr, /Dry run: the commands above were not run/);
    assert.ok(run.cpuMs < CPU_BOUND_MS, `took ${run.cpuMs.toFixed(0)} ms of CPU time`);
  });

  test('looking one key up costs the same in a section of ten keys as in one of ten thousand', () => {
    const parser = new ConfigParser();
    parser.read(text, 'large.conf');
    const used = cpuMs(() => {
      for (let i = 0; i < KEYS; i += 1) {
        parser.get('img', `k${i}`);
        parser.origin('img', `k${i}`);
        parser.getRaw('img', `d${i % 1000}`);
      }
    });
    assert.ok(used < CPU_BOUND_MS, `${3 * KEYS} lookups took ${used.toFixed(0)} ms of CPU time`);
  });
});

describe('long lines and values', () => {
  test('lines of 100,000 blanks, with and without a delimiter, are read in well under a second', () => {
    const blanks = ' '.repeat(100_000);
    for (const text of [
      `[a]\nk = x${blanks}y\n`,
      `[a]\nx${blanks}y = 1\n`,
      `[a]\nk = 1\n${`\n${blanks}`.repeat(3)}\n  x${blanks}\n`,
    ]) {
      const parser = new ConfigParser();
      const used = cpuMs(() => parser.read(text, 'blanks.conf'));
      assert.ok(used < CPU_BOUND_MS / 4, `took ${used.toFixed(0)} ms of CPU time`);
    }
    const parser = new ConfigParser();
    parser.read(`[a]\nx${' '.repeat(10)}y = 1${' '.repeat(10)}\n`, 'blanks.conf');
    assert.equal(parser.get('a', `x${' '.repeat(10)}y`), '1');
  });

  test("a value of 100,000 '${' without a '}' is refused at once, as a set() value and as a file's", () => {
    const flood = '${'.repeat(100_000);
    let problem: string | undefined;
    const used = cpuMs(() => (problem = dollarProblem(flood)));
    assert.match(problem ?? '', /not followed by/);
    assert.ok(used < CPU_BOUND_MS / 4, `took ${used.toFixed(0)} ms of CPU time`);
    assert.equal(dollarProblem('$${a}${b:c}$$'), undefined);
    for (const bad of ['$', '${}', '${a', 'a$b', '$$$', '${a}$']) assert.notEqual(dollarProblem(bad), undefined, bad);
  });

  test('unknown keys of any length get their suggestion at once (only keys of about their length are measured)', () => {
    assert.equal(suggestKey('instal-timeout'), 'install-timeout');
    assert.equal(suggestKey('imagesize'), 'image-size');
    const used = cpuMs(() => {
      for (let i = 0; i < KEYS; i += 1) suggestKey(`k${i}`);
      suggestKey('x'.repeat(100_000));
    });
    assert.ok(used < CPU_BOUND_MS, `took ${used.toFixed(0)} ms of CPU time`);
  });
});

describe('a section whose values together expand past a bound', () => {
  test('is refused naming the key where the bound was passed, within a second of CPU time', async () => {
    // f4 expands to 7380 references, under the bound of one value; ten thousand keys that use it are not.
    const fan = ['f0 = x', ...Array.from({ length: 4 }, (_, i) => `f${i + 1} = ${`\${f${i}}`.repeat(9)}`)];
    const keys = Array.from({ length: KEYS }, (_, i) => `k${i} = \${f4}`);
    const text = `[img]\nlinux = ${kernel}\ninitrd = ${kernel}\npreseed = ${preseed}\n${[...fan, ...keys].join('\n')}\n`;
    const run = await runOn(text, ['--print-config', 'img']);
    assert.equal(run.code, 2, run.stderr.slice(-2000));
    assert.match(
      run.stderr,
      /in section \[img\], key 'k\d+': the section's values, their references expanded, come to more than 16 MiB or take more than 200000 reference expansions/,
    );
    assert.ok(run.cpuMs < CPU_BOUND_MS, `took ${run.cpuMs.toFixed(0)} ms of CPU time`);
  });
});
