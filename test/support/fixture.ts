import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../..');
export const FIXTURE_DIR = join(REPO_ROOT, 'test', '.cache', 'fixture');
export const CLI = join(REPO_ROOT, 'dist', 'cli', 'index.js');

let built = false;

/** Build (or reuse) the fixture installer's kernel and initrd. */
export function ensureFixtureInstaller(): string {
  if (!built) {
    execFileSync('bash', [join(REPO_ROOT, 'test', 'fixture', 'build-fixture.sh'), FIXTURE_DIR], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    built = true;
  }
  return FIXTURE_DIR;
}

export const ARM64_FIXTURE_DIR = join(REPO_ROOT, 'test', '.cache', 'fixture-arm64');

/** The arm64 fixture installer (build-fixture.sh OUTDIR arm64), built once and cached. */
export function ensureArm64FixtureInstaller(): string {
  execFileSync('bash', [join(REPO_ROOT, 'test', 'fixture', 'build-fixture.sh'), ARM64_FIXTURE_DIR, 'arm64'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return ARM64_FIXTURE_DIR;
}

/**
 * A working folder qemu can reach under qemu:///system (libvirt's qemu user
 * needs search permission on every parent; mkdtemp folders are private).
 */
export function makeWorkDir(prefix: string): string {
  const base = '/var/tmp/image-factory-tests';
  mkdirSync(base, { recursive: true, mode: 0o755 });
  chmodSync(base, 0o755);
  const dir = mkdtempSync(join(base, `${prefix}-`));
  chmodSync(dir, 0o755);
  return dir;
}

export interface FixtureImageOptions {
  /** Directives for the fixture installer, written as `# fixture: KEY=VALUE` lines. */
  directives?: Record<string, string | number>;
  /** Extra keys for the image's section. */
  keys?: Record<string, string>;
  /** Extra INI text appended (other sections). */
  extra?: string;
  name?: string;
  answerKind?: 'preseed' | 'kickstart' | 'yast';
}

/** Write an answer file and a configuration with one image that installs with the fixture. */
export function writeFixtureConfig(
  workDir: string,
  options: FixtureImageOptions = {},
): { config: string; image: string; answer: string } {
  const fixture = ensureFixtureInstaller();
  // A name of its own per working folder: leftovers() finds domains by the image's name.
  const name = options.name ?? `fx-${basename(workDir).replace(/[^A-Za-z0-9-]/g, '')}`;
  const answer = join(workDir, `${name}-answer.cfg`);
  const directives = Object.entries(options.directives ?? {}).map(([key, value]) => `# fixture: ${key}=${value}\n`);
  writeFileSync(
    answer,
    `# answer file for the fixture installer\n${directives.join('')}d-i debian-installer/locale string en_US\n`,
  );
  const keys: Record<string, string> = {
    linux: `${fixture}/vmlinuz`,
    initrd: `file://${fixture}/initrd.gz`,
    [options.answerKind ?? 'preseed']: answer,
    append: 'console=ttyS0',
    ram: '512M',
    'image-size': '1G',
    accelerator: 'tcg',
    osinfo: 'linux2022',
    format: 'qcow2',
    cache_dir: join(workDir, 'cache'),
    'install-timeout': '5m',
    ...options.keys,
  };
  return { config: writeImageConfig(workDir, name, keys, options.extra), image: name, answer };
}

/** Write `image-factory.conf` in workDir with one image section (and `extra` INI text after it). */
export function writeImageConfig(workDir: string, name: string, keys: Record<string, string>, extra = ''): string {
  const body = Object.entries(keys)
    .map(([key, value]) => `${key} = ${value}\n`)
    .join('');
  const config = join(workDir, 'image-factory.conf');
  writeFileSync(config, `[${name}]\n${body}\n${extra}`);
  return config;
}
