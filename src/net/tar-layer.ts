import type { BlobPiece } from './oci-registry.js';

/**
 * A tar layer that holds one file, as the pieces of a blob (headers in
 * memory, the file's bytes read from disk when sent): POSIX ustar, with
 * base-256 sizes past 8 GiB as GNU tar and Go's archive/tar read them.
 */
export function singleFileTar(options: {
  /** Its folder, without slashes at either end: `disk`. */
  folder: string;
  name: string;
  path: string;
  size: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch: fixed, so the same file makes the same layer. */
  mtime: number;
}): BlobPiece[] {
  const { folder, name, path, size, uid, gid, mtime } = options;
  const owner = { uid, gid, mtime };
  const folderHeader = header({ ...owner, name: `${folder}/`, mode: 0o555, size: 0, type: '5' });
  const fileHeader = header({ ...owner, name: `${folder}/${name}`, mode: 0o444, size, type: '0' });
  const padding = (BLOCK - (size % BLOCK)) % BLOCK;
  // The file's padding and the two zero blocks that end an archive.
  return [Buffer.concat([folderHeader, fileHeader]), { path, size }, Buffer.alloc(padding + 2 * BLOCK)];
}

const BLOCK = 512;
const OCTAL_SIZE_LIMIT = 0o77777777777;

interface Entry {
  name: string;
  mode: number;
  size: number;
  uid: number;
  gid: number;
  mtime: number;
  /** '0' a file, '5' a folder. */
  type: string;
}

function header(entry: Entry): Buffer {
  const block = Buffer.alloc(BLOCK);
  const name = Buffer.from(entry.name, 'utf8');
  if (name.length > 100) throw new Error(`${entry.name}: a name longer than 100 bytes does not fit a tar header`);
  name.copy(block, 0);
  octal(block, 100, 8, entry.mode);
  octal(block, 108, 8, entry.uid);
  octal(block, 116, 8, entry.gid);
  if (entry.size > OCTAL_SIZE_LIMIT) base256(block, 124, 12, entry.size);
  else octal(block, 124, 12, entry.size);
  octal(block, 136, 12, entry.mtime);
  block.fill(' ', 148, 156);
  block.write(entry.type, 156, 'ascii');
  block.write('ustar\u000000', 257, 'binary');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
  return block;
}

/** A number as zero-padded octal digits and a NUL. */
function octal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, offset, 'ascii');
}

/** GNU's base-256 form: the first byte's high bit set, the number big-endian in the rest. */
function base256(block: Buffer, offset: number, length: number, value: number): void {
  let rest = BigInt(value);
  for (let index = offset + length - 1; index > offset; index -= 1) {
    block[index] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  block[offset] = 0x80;
}
