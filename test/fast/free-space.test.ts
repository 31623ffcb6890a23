import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  btrfsFreeSpace,
  ext4FreeSpace,
  fatFreeSpace,
  fatGeometry,
  FreeSpaceError,
  subtract,
  xfsFreeSpace,
} from '../../src/guest/free-space.js';

const MIB = 1 << 20;

describe("the file systems' free space, as their own tools print it", () => {
  test('ext4: every group\'s "Free blocks:" ranges, in bytes, merged where they touch', () => {
    const text = [
      'Block size:               1024',
      'Group 0: (Blocks 1-8192) csum 0x1234',
      '  Free blocks: 100-199, 200, 8000-8191',
      'Group 1: (Blocks 8193-16384)',
      '  Free blocks: 8193-8200',
      'Group 2: (Blocks 16385-24576)',
      '  Free blocks: ',
    ].join('\n');
    assert.deepEqual(ext4FreeSpace(text, 32 * MIB), {
      blockSize: 1024,
      extents: [
        { offset: 100 * 1024, length: 101 * 1024 },
        { offset: 8000 * 1024, length: 192 * 1024 },
        { offset: 8193 * 1024, length: 8 * 1024 },
      ],
    });
  });

  test('ext4: no group, a word where a number belongs, or a block past the device are errors, never "nothing free"', () => {
    assert.throws(() => ext4FreeSpace('Block size: 4096\n', MIB), FreeSpaceError);
    assert.throws(() => ext4FreeSpace('Block size: 4096\n Free blocks: 1-x\n', MIB), /expected a number/);
    assert.throws(() => ext4FreeSpace('Block size: 4096\n Free blocks: 1000\n', MIB), /past the device's end/);
  });

  test("XFS: xfs_db's agno/agbno/len rows placed by agblocks and blocksize", () => {
    const text = [
      'agblocks = 25600',
      'blocksize = 4096',
      '    agno    agbno      len',
      '       0        6        1',
      '       1       10    25590',
      '   from      to extents  blocks    pct',
      '      1       1      16      16   0.02',
    ].join('\n');
    assert.deepEqual(xfsFreeSpace(text, 400 * MIB).extents, [
      { offset: 6 * 4096, length: 4096 },
      { offset: (25600 + 10) * 4096, length: 25590 * 4096 },
    ]);
    assert.throws(() => xfsFreeSpace('agblocks = 1\nblocksize = 4096\n', MIB), /no free extent table/);
  });

  test('Btrfs: free space in block groups at every DUP copy, and device space outside every chunk, superblocks aside', () => {
    const text = [
      '== super',
      'sectorsize\t\t4096',
      'nodesize\t\t16384',
      'num_devices\t\t1',
      '== chunk',
      '\titem 1 key (FIRST_CHUNK_TREE CHUNK_ITEM 13631488) itemoff 16105 itemsize 80',
      '\t\tlength 8388608 owner 2 stripe_len 65536 type DATA|single',
      '\t\t\tstripe 0 devid 1 offset 13631488',
      '\titem 2 key (FIRST_CHUNK_TREE CHUNK_ITEM 30408704) itemoff 15881 itemsize 112',
      '\t\tlength 33554432 owner 2 stripe_len 65536 type METADATA|DUP',
      '\t\t\tstripe 0 devid 1 offset 38797312',
      '\t\t\tstripe 1 devid 1 offset 72351744',
      '== extent',
      '\titem 0 key (13631488 BLOCK_GROUP_ITEM 8388608) itemoff 16259 itemsize 24',
      '\titem 1 key (13631488 EXTENT_ITEM 4096) itemoff 16259 itemsize 24',
      '\titem 2 key (30408704 BLOCK_GROUP_ITEM 33554432) itemoff 16178 itemsize 24',
      '\titem 3 key (30408704 METADATA_ITEM 0) itemoff 16145 itemsize 33',
    ].join('\n');
    const { blockSize, extents } = btrfsFreeSpace(text, 128 * MIB);
    assert.equal(blockSize, 4096);
    assert.deepEqual(extents, [
      // Unallocated, past the first MiB.
      { offset: MIB, length: 12 * MIB },
      // The data block group past its one extent, and the unallocated space after it.
      { offset: 13 * MIB + 4096, length: 24 * MIB - 4096 },
      // The metadata block group past its one tree block, at both DUP copies; the superblock copy at 64 MiB kept out.
      { offset: 37 * MIB + 16384, length: 27 * MIB - 16384 },
      { offset: 64 * MIB + 4096, length: 5 * MIB - 4096 },
      { offset: 69 * MIB + 16384, length: 59 * MIB - 16384 },
    ]);
    assert.throws(() => btrfsFreeSpace(text.replace('DUP', 'RAID1'), 128 * MIB), /only single and DUP/);
  });

  test('FAT12 and FAT32: the clusters the first table marks free, from cluster 2 at the data area', () => {
    const boot = Buffer.alloc(512);
    boot.writeUInt16LE(512, 11);
    boot[13] = 1; // 512-byte clusters: a small ESP as mkfs.fat makes it
    boot.writeUInt16LE(1, 14);
    boot[16] = 2;
    boot.writeUInt16LE(16, 17); // one sector of root entries
    boot.writeUInt16LE(2000, 19);
    boot.writeUInt16LE(6, 22);
    boot[510] = 0x55;
    boot[511] = 0xaa;
    const geometry = fatGeometry(boot);
    assert.equal(geometry.bits, 12);
    assert.equal(geometry.dataOffset, (1 + 12 + 1) * 512);
    const fat = Buffer.alloc(6 * 512, 0xff);
    // Clusters 4 and 5 free: entries 4 (bytes 6-7, low 12 bits) and 5 (bytes 7-8, high 12 bits).
    fat[6] = 0;
    fat[7] = 0;
    fat[8] = 0;
    assert.deepEqual(fatFreeSpace(geometry, fat, 2000 * 512).extents, [
      { offset: geometry.dataOffset + 2 * 512, length: 1024 },
    ]);
    boot.writeUInt16LE(0, 19);
    boot.writeUInt32LE(600000, 32);
    boot.writeUInt16LE(0, 22);
    boot.writeUInt32LE(4700, 36);
    boot.writeUInt16LE(0, 17);
    const fat32 = fatGeometry(boot);
    assert.equal(fat32.bits, 32);
    const table = Buffer.alloc(4700 * 512, 0xff);
    table.writeUInt32LE(0xf0000000, 3 * 4); // the top four bits are reserved: still free
    assert.deepEqual(fatFreeSpace(fat32, table, 600000 * 512).extents, [
      { offset: fat32.dataOffset + 512, length: 512 },
    ]);
    assert.throws(() => fatGeometry(Buffer.alloc(512)), /55 AA/);
  });

  test('subtract leaves what no hole covers', () => {
    assert.deepEqual(
      subtract(
        [{ offset: 0, length: 100 }],
        [
          { offset: 10, length: 10 },
          { offset: 50, length: 60 },
        ],
      ),
      [
        { offset: 0, length: 10 },
        { offset: 20, length: 30 },
      ],
    );
  });
});
