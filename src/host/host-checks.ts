import { join } from 'node:path';
import type { ImageSpec } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import { FIRMWARE_DESCRIPTOR_DIRS, uefiFirmwareInstalled } from './firmware.js';
import { currentUid } from './host.js';
import { commandsSudoRefuses, sudoersLine } from './privileges.js';
import {
  ANSIBLE,
  applianceKernels,
  emulatorRequirement,
  missingRequirements,
  programsOf,
  REQUIREMENTS,
  SSH_CLIENT,
  type Requirement,
} from './programs.js';
import { foldersWithoutSearch, qemuSystemUser } from './qemu-access.js';

/** Checks of the host before anything is created: the programs a build runs, and sudo for a normal user. */
export function checkHost(spec: ImageSpec): void {
  const isRoot = currentUid() === 0;
  // setfacl is needed only where qemu must be let through a private folder.
  const needsAcl =
    isRoot && qemuSystemUser() !== undefined && foldersWithoutSearch(join(spec.outputDir, 'x')).length > 0;
  const missing = missingRequirements(
    REQUIREMENTS.filter(
      (requirement) =>
        (!requirement.optional || (spec.signing !== undefined && requirement.programs.includes('gpg'))) &&
        (needsAcl || !requirement.programs.includes('setfacl')),
    ),
  );
  if (missing.length) {
    const apt = [...new Set(missing.flatMap((requirement) => requirement.packages['apt-get']))].join(' ');
    const dnf = [...new Set(missing.flatMap((requirement) => requirement.packages.dnf))].join(' ');
    throw new UsageError(
      `missing programs: ${programsOf(missing)}. Install them (apt-get install ${apt}, or dnf install ${dnf}), or run with --install-dependencies.`,
    );
  }
  if (!applianceKernels().length) {
    throw new UsageError(
      "the scrub's libguestfs appliance boots the host's kernel, but /boot holds no vmlinuz-*. Install one (apt-get install linux-image-amd64, or dnf install kernel-core), or run with --install-dependencies.",
    );
  }
  checkFirmware(spec);
  checkGuestAccess(spec);
  if (!isRoot) {
    const refused = commandsSudoRefuses();
    if (refused.length) {
      throw new UsageError(
        `building as a normal user runs a few steps as root through 'sudo -n', but sudo refuses ${refused.join(', ')} without a password. ` +
          `Allow exactly the build's root commands with a sudoers rule (visudo -f /etc/sudoers.d/image-factory):\n  ${sudoersLine()}`,
      );
    }
  }
}

/**
 * What this build's provisioning and boot-test checks need: ssh, scp and
 * ssh-keygen each, and ansible-playbook for an ansible provisioner or a
 * boot-test-playbook. Host setup installs them for such builds only.
 */
export function guestAccessRequirements(spec: ImageSpec): Requirement[] {
  const ansible =
    spec.provision?.provisioners.some((p) => p.kind === 'ansible') || spec.bootTest.playbook !== undefined;
  const ssh = (spec.provision?.provisioners.length ?? 0) > 0 || (spec.bootTest.commands?.length ?? 0) > 0 || ansible;
  return [
    ...(ssh ? SSH_CLIENT.programs.map((program) => ({ ...SSH_CLIENT, programs: [program] })) : []),
    ...(ansible ? [ANSIBLE] : []),
  ];
}

/**
 * Provisioning and the boot test's checks run ssh, scp and ssh-keygen (every
 * one of them: missingRequirements takes any one); ansible provisioners and
 * boot-test-playbook run ansible-playbook.
 */
function checkGuestAccess(spec: ImageSpec): void {
  const missing = missingRequirements(guestAccessRequirements(spec));
  if (!missing.length) return;
  const apt = [...new Set(missing.flatMap((requirement) => requirement.packages['apt-get']))].join(' ');
  const dnf = [...new Set(missing.flatMap((requirement) => requirement.packages.dnf))].join(' ');
  throw new UsageError(
    `provisioning and the boot test's checks reach the image over SSH, but ${programsOf(missing)} is not installed. ` +
      `Install it (apt-get install ${apt}, or dnf install ${dnf}).`,
  );
}

/** A guest of another architecture than the host's needs that architecture's qemu. */
function checkArchEmulator(spec: ImageSpec): void {
  const requirement = emulatorRequirement(spec.arch);
  if (missingRequirements([requirement]).length === 0) return;
  throw new UsageError(
    `arch = ${spec.arch} needs ${requirement.programs[0]}, which is not installed. ` +
      `Install it (apt-get install ${requirement.packages['apt-get'].join(' ')}, or dnf install ${requirement.packages.dnf.join(' ')}), or run with --install-dependencies.`,
  );
}

/** UEFI builds need OVMF, found the way libvirt finds it (a firmware descriptor). */
function checkFirmware(spec: ImageSpec): void {
  checkArchEmulator(spec);
  if (uefiFirmwareInstalled(spec.firmware, spec.arch)) return;
  if (spec.arch === 'aarch64') {
    throw new UsageError(
      `arch = aarch64 needs AArch64 UEFI firmware (AAVMF), and no firmware descriptor in ${FIRMWARE_DESCRIPTOR_DIRS.join(' or ')} offers it. ` +
        'Install it (apt-get install qemu-efi-aarch64, or dnf install edk2-aarch64), or run with --install-dependencies.',
    );
  }
  const what = spec.firmware === 'uefi-secure' ? 'UEFI firmware with Secure Boot and enrolled keys' : 'UEFI firmware';
  throw new UsageError(
    `firmware = ${spec.firmware} needs ${what} for x86_64 (OVMF), and no firmware descriptor in ${FIRMWARE_DESCRIPTOR_DIRS.join(' or ')} offers it. ` +
      'Install it (apt-get install ovmf, or dnf install edk2-ovmf), or run with --install-dependencies.',
  );
}
