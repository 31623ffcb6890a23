import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { diskSize } from '../../src/config/image-spec.js';
import { optionByKey, valueProblem } from '../../src/config/options.js';

describe('the format option', () => {
  const format = optionByKey('format');

  test('takes one format or a comma-separated list, each once', () => {
    for (const good of ['raw', 'qcow2', 'vmdk', 'vhdx', 'vhd', 'qcow2, vmdk', 'vhd,qcow2 , vmdk,vhdx,raw']) {
      assert.equal(valueProblem(format, good), undefined, good);
    }
    assert.equal(valueProblem(format, 'vdi'), "'vdi' is not one of raw, qcow2, vmdk, vhdx, vhd.");
    assert.equal(
      valueProblem(format, 'qcow2, vdi'),
      "'vdi' (in 'qcow2, vdi') is not one of raw, qcow2, vmdk, vhdx, vhd.",
    );
    assert.equal(
      valueProblem(format, 'qcow2,,vmdk'),
      "'qcow2,,vmdk' has an empty item; give one or more of raw, qcow2, vmdk, vhdx, vhd, separated by commas.",
    );
    assert.equal(valueProblem(format, 'qcow2, qcow2'), "'qcow2, qcow2' names qcow2 twice; name each once.");
  });

  test('a VHD among the formats rounds the disk up to a whole MiB; otherwise the size is as given', () => {
    assert.equal(diskSize(1e9, ['qcow2']), 1e9);
    assert.equal(diskSize(1e9, ['qcow2', 'vhd']), 954 * 2 ** 20);
    assert.equal(diskSize(2 ** 30, ['vhd']), 2 ** 30);
    assert.equal(diskSize(2 ** 20 + 512, ['vhd']), 2 * 2 ** 20);
  });
});
