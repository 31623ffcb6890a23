import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchHost } from './host.js';
import type { Manifest } from './image.js';
import { output, run } from './proc.js';

export interface FreeSpaceCheck {
  blockSize: number;
  freeBlocks: number;
  /** Free blocks (per the file system's own bitmaps) that do not read as zeros. */
  nonZeroBlocks: number;
  ms: number;
}

/** `dumpe2fs` free block ranges of every group, as [first, last] block numbers. */
export function parseFreeRanges(dump: string): { blockSize: number; ranges: Array<[number, number]> } {
  const blockSize = Number(/^Block size:\s+(\d+)$/m.exec(dump)?.[1]);
  if (!blockSize) throw new Error('dumpe2fs printed no block size');
  const ranges: Array<[number, number]> = [];
  for (const match of dump.matchAll(/^\s+Free blocks: ?(.*)$/gm)) {
    for (const part of match[1].split(',')) {
      const text = part.trim();
      if (!text) continue;
      const [first, last] = text.split('-').map(Number);
      ranges.push([first, last ?? first]);
    }
  }
  return { blockSize, ranges };
}

/**
 * Read every block the file system counts as free, straight from the raw
 * file, and count those that are not all zeros. The free list comes from the
 * file system's bitmaps (dumpe2fs on a read-only loop device of the
 * partition), the bytes from the file itself.
 */
export async function checkFreeSpace(
  bench: BenchHost,
  rawPath: string,
  offset: number,
  size: number,
): Promise<FreeSpaceCheck> {
  const started = performance.now();
  const loop = await bench.attachLoop(rawPath, offset, size, true);
  let dump: string;
  try {
    dump = await output(['dumpe2fs', loop.device]);
  } finally {
    await bench.cleanup.release(loop.entry);
  }
  const { blockSize, ranges } = parseFreeRanges(dump);
  const chunkBlocks = (8 << 20) / blockSize;
  const buffer = Buffer.alloc(chunkBlocks * blockSize);
  const zeros = Buffer.alloc(buffer.length);
  const file = await open(rawPath, 'r');
  let freeBlocks = 0;
  let nonZeroBlocks = 0;
  try {
    for (const [first, last] of ranges) {
      freeBlocks += last - first + 1;
      for (let block = first; block <= last; block += chunkBlocks) {
        const count = Math.min(chunkBlocks, last - block + 1);
        const length = count * blockSize;
        const { bytesRead } = await file.read(buffer, 0, length, offset + block * blockSize);
        if (bytesRead !== length) throw new Error(`short read of free blocks ${block}+${count} in ${rawPath}`);
        if (buffer.subarray(0, length).equals(zeros.subarray(0, length))) continue;
        for (let i = 0; i < count; i += 1) {
          const slice = buffer.subarray(i * blockSize, (i + 1) * blockSize);
          if (!slice.equals(zeros.subarray(0, blockSize))) nonZeroBlocks += 1;
        }
      }
    }
  } finally {
    await file.close();
  }
  return { blockSize, freeBlocks, nonZeroBlocks, ms: performance.now() - started };
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>)
    hash.update(chunk);
  return hash.digest('hex');
}

/** The tree under a mounted file system, in the form of a Manifest. */
export async function treeOf(root: string): Promise<Manifest> {
  const tree: Manifest = new Map();
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        tree.set(path, 'd');
        await walk(path);
      } else if (entry.isSymbolicLink()) {
        tree.set(path, `l:${await readlink(join(root, path))}`);
      } else if (entry.isFile()) {
        tree.set(path, await sha256Of(join(root, path)));
      } else {
        tree.set(path, 'other');
      }
    }
  };
  await walk('');
  return tree;
}

/** Differences between what a tree should hold and what it holds, one line each. */
export function compareTrees(expected: Manifest, actual: Manifest): string[] {
  const problems: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (got === undefined) problems.push(`missing: /${path}`);
    else if (got !== want) problems.push(`differs: /${path}`);
  }
  for (const path of actual.keys()) if (!expected.has(path)) problems.push(`unexpected: /${path}`);
  return problems;
}

/** `diff -r --no-dereference` of two trees and of their metadata listings; empty when identical. */
export async function diffTrees(a: string, b: string): Promise<string[]> {
  const problems: string[] = [];
  const diff = await run(['diff', '-r', '--no-dereference', a, b], { allowFailure: true });
  if (diff.exitCode !== 0) problems.push(...`${diff.stdout}${diff.stderr}`.trim().split('\n').slice(0, 20));
  const listing = async (root: string): Promise<string> =>
    (await output(['find', '.', '-printf', '%P\\t%y\\t%m\\t%U\\t%G\\t%s\\t%l\\n'], { cwd: root }))
      .split('\n')
      .sort()
      .join('\n');
  const [la, lb] = await Promise.all([listing(a), listing(b)]);
  if (la !== lb) {
    const setB = new Set(lb.split('\n'));
    const only = la.split('\n').filter((line) => !setB.has(line));
    problems.push(`metadata differs (type, mode, owner, size or link target), e.g. ${only.slice(0, 5).join(' | ')}`);
  }
  return problems;
}
