import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { REPO_ROOT } from '../support/fixture.js';
import { runCli } from '../support/run-cli.js';

const GOLDEN = join(REPO_ROOT, 'test', 'golden', 'virt-install');
const DATA = join(REPO_ROOT, 'data');
const update = process.env.UPDATE_GOLDEN === '1';
const home = mkdtempSync(join(tmpdir(), 'golden-home-'));
after(() => rmSync(home, { recursive: true, force: true }));

const images = readFileSync(join(DATA, 'image-factory.conf'), 'utf8')
  .split('\n')
  .map((line) => /^\[([^\]]+)\]/.exec(line)?.[1])
  .filter((name): name is string => name !== undefined && name !== 'DEFAULT');

/** The virt-install line of a dry run, with what changes from run to run made constant. */
function virtInstallLine(stderr: string, image: string): string {
  const line = stderr.split('\n').find((l) => l.includes('INFO: Calling virt-install '));
  assert.ok(line, `no virt-install line for ${image}:\n${stderr}`);
  return line
    .replace(/^.* INFO: Calling /, '')
    .replaceAll(DATA, '<data>')
    .replace(/\d{4}-\d\d-\d\d/g, '<date>');
}

describe('the virt-install command line of every shipped image (a change here is a reviewed change)', () => {
  test('there are shipped images', () => assert.ok(images.length >= 10, images.join(', ')));
  // Every image under both firmwares on x86_64, and under UEFI (its only firmware) on aarch64; x86_64's BIOS
  // files keep their names from before there was a choice.
  const variants = images.flatMap((image) => [
    { image, arch: 'x86_64', firmware: 'bios' } as const,
    { image, arch: 'x86_64', firmware: 'uefi' } as const,
    { image, arch: 'aarch64', firmware: 'uefi' } as const,
  ]);
  for (const { image, arch, firmware } of variants) {
    test(`${image} (${arch}, ${firmware})`, async () => {
      // No configuration of the user's own: the shipped definitions alone.
      const run = await runCli(
        [
          '--dry-run',
          image,
          '--arch',
          arch,
          '--accelerator',
          'tcg',
          '--firmware',
          firmware,
          '--output-dir',
          '/srv/images',
          '--cache-dir',
          '/var/cache/image-factory',
        ],
        {
          env: { HOME: home, IMAGE_FACTORY_CONFIG: undefined },
        },
      );
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, new RegExp(`the installer's VM boots with ${firmware.toUpperCase()} `));
      const actual = `${virtInstallLine(run.stderr, image)}\n`;
      // A dry run starts no answer-file server: an image with http delivery names the guest's address and no port.
      for (const url of actual.match(/http:\/\/10\.0\.2\.2[^ ']*/g) ?? [])
        assert.match(url, /^http:\/\/10\.0\.2\.2:PORT\/TOKEN\//);
      const name = arch === 'x86_64' ? (firmware === 'bios' ? image : `${image}.${firmware}`) : `${image}-${arch}`;
      const file = join(GOLDEN, `${name}.txt`);
      if (update) {
        mkdirSync(GOLDEN, { recursive: true });
        writeFileSync(file, actual);
      }
      assert.equal(actual, readFileSync(file, 'utf8'));
    });
  }
});
