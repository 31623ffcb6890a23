import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One entry of `sfdisk --json`'s partition table. */
export interface TablePartition {
  node: string;
  start: number;
  size: number;
  type: string;
}

/**
 * Look inside a finished image the way an operator would: convert it to raw
 * if needed, attach a partition read-only (the table's first, or the one
 * `pick` chooses), mount it, and collect answers.
 */
export function inspectImage<T>(
  imagePath: string,
  look: (root: string) => T,
  pick: (partitions: TablePartition[]) => TablePartition | undefined = (partitions) => partitions[0],
): T {
  const scratch = mkdtempSync(join(tmpdir(), 'inspect-'));
  let raw = imagePath;
  let loop = '';
  const mountpoint = join(scratch, 'root');
  try {
    if (imagePath.endsWith('.qcow2')) {
      raw = join(scratch, 'disk.raw');
      execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', imagePath, raw]);
    }
    const table = JSON.parse(execFileSync('sfdisk', ['--json', raw], { encoding: 'utf8' })) as {
      partitiontable: { sectorsize?: number; partitions: TablePartition[] };
    };
    const sector = table.partitiontable.sectorsize ?? 512;
    const part = pick(table.partitiontable.partitions);
    if (!part) throw new Error(`no such partition in ${imagePath}: ${JSON.stringify(table.partitiontable.partitions)}`);
    loop = execFileSync(
      'losetup',
      [
        '--find',
        '--show',
        '--read-only',
        '--offset',
        String(part.start * sector),
        '--sizelimit',
        String(part.size * sector),
        raw,
      ],
      {
        encoding: 'utf8',
      },
    ).trim();
    execFileSync('mkdir', [mountpoint]);
    execFileSync('mount', ['-o', 'ro', loop, mountpoint]);
    return look(mountpoint);
  } finally {
    // A mount that failed leaves nothing to unmount; the loop device goes either way.
    if (existsSync(mountpoint)) spawnSync('umount', [mountpoint], { stdio: 'ignore' });
    if (loop) execFileSync('losetup', ['--detach', loop]);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Whether the bytes of `text` appear anywhere in the image's disk, free
 * space included: what a consumer of the image could read back.
 */
export function diskContains(imagePath: string, text: string): boolean {
  return diskFind(imagePath, [text]).length > 0;
}

/** Which of the texts are anywhere in the disk's bytes (a qcow2 is read as the raw disk it holds). */
export function diskFind(imagePath: string, texts: readonly string[]): string[] {
  const scratch = mkdtempSync(join(tmpdir(), 'grep-'));
  try {
    let raw = imagePath;
    if (imagePath.endsWith('.qcow2')) {
      raw = join(scratch, 'disk.raw');
      execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', imagePath, raw]);
    }
    // One grep a text, each stopping at its first match: a text found a million times prints nothing.
    return texts.filter(
      (text) => spawnSync('grep', ['--quiet', '--text', '--fixed-strings', '--', text, raw]).status === 0,
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A file of the mounted image as text, or undefined when it is absent. */
export function readText(root: string, path: string): string | undefined {
  const full = join(root, path);
  return existsSync(full) ? readFileSync(full, 'utf8') : undefined;
}
