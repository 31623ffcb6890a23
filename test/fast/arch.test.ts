import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { archKeys, foreignArchReason, hostArch } from '../../src/common/arch.js';
import { archVmOptions } from '../../src/vm/virt-install.js';
import { chooseAccelerator } from '../../src/host/accelerator.js';
import { archSuffix } from '../../src/config/image-spec.js';

describe('the guest architecture', () => {
  test("the host's architecture comes from node's name for it", () => {
    assert.equal(hostArch('x64'), 'x86_64');
    assert.equal(hostArch('arm64'), 'aarch64');
  });

  test('an aarch64 guest gets the virt machine and a CPU model TCG can run, or the host CPU under KVM', () => {
    assert.deepEqual(archVmOptions('aarch64', 'tcg', undefined, 'x86_64'), [
      '--arch',
      'aarch64',
      '--machine',
      'virt',
      '--cpu',
      'cortex-a57',
    ]);
    assert.deepEqual(archVmOptions('aarch64', 'kvm', undefined, 'aarch64').slice(-2), ['--cpu', 'host-passthrough']);
    // a configured cpu wins (virt-install gets it once)
    assert.deepEqual(archVmOptions('aarch64', 'tcg', 'max', 'x86_64'), ['--arch', 'aarch64', '--machine', 'virt']);
  });

  test('an x86_64 guest keeps virt-install defaults on an x86_64 host and names its arch on an arm64 one', () => {
    assert.deepEqual(archVmOptions('x86_64', 'kvm', undefined, 'x86_64'), []);
    assert.deepEqual(archVmOptions('x86_64', 'tcg', undefined, 'aarch64'), ['--arch', 'x86_64']);
  });

  test('KVM is chosen only for a guest of the host architecture; auto falls back to TCG with the reason', () => {
    assert.equal(foreignArchReason('x86_64', 'x86_64'), undefined);
    assert.equal(foreignArchReason('aarch64', 'aarch64'), undefined);
    const reason = foreignArchReason('aarch64', 'x86_64');
    assert.match(reason ?? '', /this host is x86_64 and the image is aarch64/);
    const auto = chooseAccelerator('auto', { usable: false, reason });
    assert.equal(auto.accelerator, 'tcg');
    assert.match(auto.warning ?? '', /image is aarch64/);
    assert.match(
      chooseAccelerator('kvm', { usable: false, reason }).error ?? '',
      /accelerator = kvm, but KVM is not usable: this host is x86_64/,
    );
  });

  test('the keys the shipped definitions interpolate, and the file names', () => {
    assert.deepEqual(archKeys('x86_64'), {
      debian_arch: 'amd64',
      uname_arch: 'x86_64',
      serial_console: 'ttyS0',
      ubuntu_releases: '${ubuntu_mirror}',
      ubuntu_release_folder: '',
    });
    assert.deepEqual(archKeys('aarch64'), {
      debian_arch: 'arm64',
      uname_arch: 'aarch64',
      serial_console: 'ttyAMA0',
      ubuntu_releases: '${ubuntu_ports_mirror}',
      ubuntu_release_folder: '/release',
    });
    assert.equal(archSuffix('x86_64'), '');
    assert.equal(archSuffix('aarch64'), '-aarch64');
  });
});
