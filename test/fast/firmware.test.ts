import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { uefiFirmwareInstalled } from '../../src/host/firmware.js';

const work = mkdtempSync(join(tmpdir(), 'firmware-'));
after(() => rmSync(work, { recursive: true, force: true }));

function descriptorDir(descriptors: Record<string, unknown>): string {
  const dir = mkdtempSync(join(work, 'descriptors-'));
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(descriptors))
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

const plain = { 'interface-types': ['uefi'], targets: [{ architecture: 'x86_64' }], features: ['acpi-s3'] };
const secure = { ...plain, features: ['secure-boot', 'enrolled-keys', 'requires-smm'] };

describe('UEFI firmware, found as libvirt finds it', () => {
  test('bios needs no descriptor; uefi needs a UEFI descriptor for the architecture', () => {
    const empty = descriptorDir({});
    assert.equal(uefiFirmwareInstalled('bios', 'x86_64', [empty]), true);
    assert.equal(uefiFirmwareInstalled('uefi', 'x86_64', [empty, '/nonexistent']), false);
    const arm = descriptorDir({ '60-arm.json': { ...plain, targets: [{ architecture: 'aarch64' }] } });
    assert.equal(uefiFirmwareInstalled('uefi', 'x86_64', [arm]), false);
    assert.equal(uefiFirmwareInstalled('uefi', 'aarch64', [arm]), true);
  });

  test('uefi-secure needs Secure Boot with enrolled keys; a broken file is skipped', () => {
    const onlyPlain = descriptorDir({ '60-x.json': plain, '10-broken.json': '{not json' });
    assert.equal(uefiFirmwareInstalled('uefi', 'x86_64', [onlyPlain]), true);
    assert.equal(uefiFirmwareInstalled('uefi-secure', 'x86_64', [onlyPlain]), false);
    const both = descriptorDir({ '40-secure.json': secure, '60-x.json': plain });
    assert.equal(uefiFirmwareInstalled('uefi-secure', 'x86_64', [both]), true);
  });
});
