import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { REPO_ROOT } from '../support/fixture.js';
import { runCli } from '../support/run-cli.js';

const GOLDEN = join(REPO_ROOT, 'test', 'golden', 'verification');
const DATA = join(REPO_ROOT, 'data');
const update = process.env.UPDATE_GOLDEN === '1';
const home = mkdtempSync(join(tmpdir(), 'golden-verify-home-'));
after(() => rmSync(home, { recursive: true, force: true }));

const images = readFileSync(join(DATA, 'image-factory.conf'), 'utf8')
  .split('\n')
  .map((line) => /^\[([^\]]+)\]/.exec(line)?.[1])
  .filter((name): name is string => name !== undefined && name !== 'DEFAULT');

const ARCHES = ['x86_64', 'aarch64'] as const;

/** The dry run's lines about verification: the chain, or the warning that there is none. */
function chainLines(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => / INFO: verify: | WARNING: the installer files of .* are not verified/.test(line))
    .map((line) => line.replace(/^.* (INFO|WARNING): /, '$1: '))
    .join('\n');
}

describe('the verification chain of every shipped image in its dry run (a change here is a reviewed change)', () => {
  for (const [image, arch] of images.flatMap((name) => ARCHES.map((a) => [name, a] as const)))
    test(`${image} (${arch})`, async () => {
      const run = await runCli(
        ['--dry-run', image, '--arch', arch, '--accelerator', 'tcg', '--output-dir', '/srv/images'],
        { env: { HOME: home, IMAGE_FACTORY_CONFIG: undefined } },
      );
      assert.equal(run.code, 0, run.stderr);
      const actual = `${chainLines(run.stderr)}\n`;
      assert.notEqual(actual.trim(), '', 'every image says how its installer is verified, or that it is not');
      const file = join(GOLDEN, `${image}${arch === 'x86_64' ? '' : `-${arch}`}.txt`);
      if (update) {
        mkdirSync(GOLDEN, { recursive: true });
        writeFileSync(file, actual);
      }
      assert.equal(actual, readFileSync(file, 'utf8'));
    });
});
