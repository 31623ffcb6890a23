import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import type { Accelerator } from '../config/image-spec.js';

export interface KvmStatus {
  usable: boolean;
  /** Why not, in words that say how to fix the host. */
  reason?: string;
}

/**
 * Whether guests can use KVM. The device must exist and be open to the user
 * qemu runs as (for qemu:///system that is libvirt's qemu user, which gets it
 * through the kvm group), and the CPU must expose virtualization: a nested
 * guest without VMX/SVM has a /dev/kvm that cannot run anything.
 */
export function kvmStatus(isRoot = (process.getuid?.() ?? 0) === 0, devicePath = '/dev/kvm'): KvmStatus {
  let mode: number;
  try {
    mode = statSync(devicePath).mode;
  } catch {
    return {
      usable: false,
      reason: `${devicePath} does not exist (no KVM module loaded, or virtualization disabled in the firmware or hypervisor)`,
    };
  }
  if (isRoot) {
    // qemu under qemu:///system is not root: it reaches the device through the kvm group.
    if ((mode & 0o060) !== 0o060 && (mode & 0o006) !== 0o006) {
      return {
        usable: false,
        reason: `${devicePath} is mode ${(mode & 0o777).toString(8)}: libvirt's qemu user cannot open it. Fix: chgrp kvm ${devicePath} && chmod 660 ${devicePath} (or install a udev rule: KERNEL=="kvm", GROUP="kvm", MODE="0660")`,
      };
    }
  } else {
    try {
      accessSync(devicePath, constants.R_OK | constants.W_OK);
    } catch {
      return {
        usable: false,
        reason: `${devicePath} is not readable and writable for this user. Fix: add the user to the kvm group (usermod -aG kvm USER) and log in again`,
      };
    }
  }
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return { usable: true };
  }
  // x86 CPUs list VMX/SVM among their flags; arm64 ones say nothing of it (a /dev/kvm there works).
  if (/^flags\s*:/m.test(cpuinfo) && !/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) {
    return {
      usable: false,
      reason:
        'the CPU exposes no VMX/SVM flag (a nested guest without nested virtualization): KVM cannot run guests here',
    };
  }
  return { usable: true };
}

/** What a build's VMs and appliance run on: KVM, or qemu's TCG software emulation. */
export type VmAccelerator = 'kvm' | 'tcg';

export type ResolvedAccelerator = { accelerator: VmAccelerator; warning?: string; error?: string };

export function chooseAccelerator(wanted: Accelerator, status: KvmStatus = kvmStatus()): ResolvedAccelerator {
  if (wanted === 'tcg') return { accelerator: 'tcg' };
  if (status.usable) return { accelerator: 'kvm' };
  if (wanted === 'kvm')
    return { accelerator: 'kvm', error: `accelerator = kvm, but KVM is not usable: ${status.reason}.` };
  return {
    accelerator: 'tcg',
    warning: `KVM is not usable (${status.reason}); installing under TCG software emulation, which is many times slower.`,
  };
}
