import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkDir } from '../support/fixture.js';

const workDirs: string[] = [];

/** A working folder qemu can reach; removed by removeWorkDirs(). */
export function workDir(name: string): string {
  const dir = makeWorkDir(`action-${name}`);
  workDirs.push(dir);
  return dir;
}

export function removeWorkDirs(): void {
  for (const dir of workDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * IMAGE_FACTORY_CONFIG naming an empty file: the builds read only the
 * `config` and `config-text` inputs, not the shipped definitions (whose
 * [DEFAULT] may change) nor this machine's /etc/image-factory.conf.
 */
export function isolatedConfig(dir: string): Record<string, string> {
  const base = join(dir, 'base.conf');
  writeFileSync(base, '# empty: the tests define their images with the config input\n');
  return { IMAGE_FACTORY_CONFIG: base };
}

/**
 * Inputs most tests share: the fixture image from `config`, TCG, nothing
 * installed, files in `dir`. Each test names its image (action-…), since
 * leftovers() finds domains by name and other test runs share this libvirt.
 */
export function fixtureInputs(dir: string, config: string, image: string): Record<string, string> {
  return { image, config, accelerator: 'tcg', 'install-dependencies': 'false', 'output-dir': dir };
}
