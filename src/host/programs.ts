import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Arch } from '../common/arch.js';
import { uefiFirmwareInstalled } from './firmware.js';

export type PackageManager = 'apt-get' | 'dnf';

/** A program a build runs, and the packages that bring it on each family of distributions. */
export interface Requirement {
  /** Names (on PATH or in sbin) or absolute paths; any one will do. */
  programs: string[];
  packages: Record<PackageManager, string[]>;
  /** Host setup installs it, but a build runs without it (and says what it could not do). */
  optional?: boolean;
  /** Something that is not a program (firmware): whether it is installed; `programs` then only names it. */
  installed?: () => boolean;
}

// RHEL-like systems ship the emulator only as /usr/libexec/qemu-kvm.
const X86_64_EMULATOR: Requirement = {
  programs: ['qemu-system-x86_64', '/usr/libexec/qemu-kvm'],
  packages: { 'apt-get': ['qemu-system-x86'], dnf: ['qemu-kvm'] },
};

// aarch64 guests (arch = aarch64), on either host; host-checks.ts requires it only for those builds.
const AARCH64_EMULATOR: Requirement = {
  programs: ['qemu-system-aarch64'],
  packages: { 'apt-get': ['qemu-system-arm'], dnf: ['qemu-system-aarch64'] },
  optional: true,
};

/** The qemu that runs guests of this architecture. */
export function emulatorRequirement(arch: Arch): Requirement {
  return arch === 'aarch64' ? AARCH64_EMULATOR : X86_64_EMULATOR;
}

/** The SSH client, for provisioning and the boot test's checks (host-checks.ts requires it only for those builds). */
export const SSH_CLIENT: Requirement = {
  programs: ['ssh', 'scp', 'ssh-keygen'],
  packages: { 'apt-get': ['openssh-client'], dnf: ['openssh-clients'] },
  optional: true,
};

/** Ansible, for `ansible` provisioners and boot-test-playbook (host-checks.ts requires it only for those builds). */
export const ANSIBLE: Requirement = {
  programs: ['ansible-playbook'],
  packages: { 'apt-get': ['ansible-core'], dnf: ['ansible-core'] },
  optional: true,
};

/** Everything a build runs. */
export const REQUIREMENTS: Requirement[] = [
  { programs: ['qemu-img'], packages: { 'apt-get': ['qemu-utils'], dnf: ['qemu-img'] } },
  X86_64_EMULATOR,
  AARCH64_EMULATOR,
  { programs: ['virt-install'], packages: { 'apt-get': ['virtinst'], dnf: ['virt-install'] } },
  {
    programs: ['virsh'],
    packages: {
      'apt-get': ['libvirt-clients', 'libvirt-daemon-system'],
      dnf: ['libvirt-client', 'libvirt-daemon-kvm'],
    },
  },
  // The daemon itself: monolithic libvirtd, or the modular virtqemud of newer Fedora.
  {
    programs: ['libvirtd', 'virtqemud'],
    packages: { 'apt-get': ['libvirt-daemon-system'], dnf: ['libvirt-daemon-kvm'] },
  },
  // The scrub's libguestfs appliance (guest/appliance.ts); it boots the host's kernel from /boot (applianceKernels).
  { programs: ['guestfish'], packages: { 'apt-get': ['libguestfs-tools'], dnf: ['guestfs-tools'] } },
  { programs: ['rsync'], packages: { 'apt-get': ['rsync'], dnf: ['rsync'] } },
  // getfacl/setfacl give qemu passage through private folders (see qemu-access.ts).
  { programs: ['setfacl'], packages: { 'apt-get': ['acl'], dnf: ['acl'] } },
  // gpgv checks the distributions' signatures over their checksum lists (supply-chain/verify.ts).
  { programs: ['gpgv'], packages: { 'apt-get': ['gpgv'], dnf: ['gnupg2'] } },
  // gpg signs SHA256SUMS with signing-key (supply-chain/sign.ts); host-checks.ts requires it only for those builds.
  { programs: ['gpg'], packages: { 'apt-get': ['gpg', 'gpg-agent'], dnf: ['gnupg2'] }, optional: true },
  // rpm reads an installed Fedora, Enterprise Linux or openSUSE system's package database (guest/inventory.ts).
  { programs: ['rpm'], packages: { 'apt-get': ['rpm'], dnf: ['rpm'] }, optional: true },
  // UEFI firmware for firmware = uefi and uefi-secure; host-checks.ts requires it only for those builds.
  {
    programs: ['OVMF'],
    packages: { 'apt-get': ['ovmf'], dnf: ['edk2-ovmf'] },
    optional: true,
    installed: () => uefiFirmwareInstalled('uefi-secure'),
  },
  // AArch64 UEFI firmware (AAVMF): every aarch64 guest boots it.
  {
    programs: ['AAVMF'],
    packages: { 'apt-get': ['qemu-efi-aarch64'], dnf: ['edk2-aarch64'] },
    optional: true,
    installed: () => uefiFirmwareInstalled('uefi', 'aarch64'),
  },
];

/** Full path of a program on PATH (sbin folders included), or undefined. */
export function findProgram(name: string): string | undefined {
  if (isAbsolute(name)) return isExecutable(name) ? name : undefined;
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/local/sbin', '/usr/sbin', '/sbin']);
  return dirs
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, name))
    .find(isExecutable);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The requirements none of whose programs is installed. */
export function missingRequirements(requirements = REQUIREMENTS): Requirement[] {
  return requirements.filter((requirement) =>
    requirement.installed ? !requirement.installed() : !requirement.programs.some((program) => findProgram(program)),
  );
}

export function programsOf(requirements: Requirement[]): string {
  return requirements.map((requirement) => requirement.programs[0]).join(', ');
}

/** The kernels in /boot that libguestfs's appliance can boot (it has none of its own). */
export function applianceKernels(boot = '/boot'): string[] {
  try {
    return readdirSync(boot).filter((name) => /^vmlinu[xz]-/.test(name));
  } catch {
    return [];
  }
}

/** The package that puts a kernel in /boot for the appliance, where there is none. */
export function applianceKernelPackages(manager: PackageManager, distribution: string, boot = '/boot'): string[] {
  if (applianceKernels(boot).length) return [];
  if (manager === 'dnf') return ['kernel-core'];
  return [distribution === 'ubuntu' ? 'linux-image-generic' : 'linux-image-amd64'];
}
