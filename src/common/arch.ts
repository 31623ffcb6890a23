/**
 * The guest architectures a build can target, and what differs between them:
 * the names distributions give them, the serial console of the machine type,
 * whether KVM can run them here (virt-install's options for each are in
 * vm/virt-install.ts).
 */

export type Arch = 'x86_64' | 'aarch64';

/** The architecture of this host, as qemu and the kernel name it. */
export function hostArch(nodeArch: string = process.arch): Arch {
  return nodeArch === 'arm64' ? 'aarch64' : 'x86_64';
}

/**
 * Keys image-factory sets in an image's section from its `arch` (unless the
 * section itself sets them), for the shipped definitions to interpolate: the
 * architecture as Debian and Ubuntu name it, as the kernel (uname -m) and
 * RPM distributions name it, the serial console the machine type has (the
 * PC's 16550, the virt machine's PL011), and where Ubuntu publishes the
 * architecture's installer (releases.ubuntu.com has amd64 only; the other
 * architectures are on cdimage.ubuntu.com, in each release's release/ folder).
 */
export function archKeys(arch: string): Record<string, string> {
  switch (arch) {
    case 'x86_64':
      return X86_64_KEYS;
    case 'aarch64':
      return {
        debian_arch: 'arm64',
        uname_arch: 'aarch64',
        serial_console: 'ttyAMA0',
        ubuntu_releases: '${ubuntu_ports_mirror}',
        ubuntu_release_folder: '/release',
      };
    default:
      // A wrong arch is reported by the option's check, not by an interpolation error.
      return X86_64_KEYS;
  }
}

const X86_64_KEYS = {
  debian_arch: 'amd64',
  uname_arch: 'x86_64',
  serial_console: 'ttyS0',
  ubuntu_releases: '${ubuntu_mirror}',
  ubuntu_release_folder: '',
};

/** The serial console of the architecture's machine type, as the guest's kernel names it (console=…). */
export function serialConsole(arch: Arch): string {
  return archKeys(arch).serial_console;
}

/** The keys archKeys sets, and the ones its values refer to (the Ubuntu mirrors). */
export const ARCH_KEYS = [
  ...Object.keys(X86_64_KEYS),
  ...[...Object.values(X86_64_KEYS), ...Object.values(archKeys('aarch64'))].flatMap((value) =>
    [...value.matchAll(/\$\{([^}]+)\}/g)].map((match) => match[1]),
  ),
];

/** Where KVM cannot run the guest: it runs only guests of the host's own architecture. */
export function foreignArchReason(arch: Arch, host: Arch = hostArch()): string | undefined {
  if (arch === host) return undefined;
  return `this host is ${host} and the image is ${arch}: KVM runs only guests of the host's architecture, so the ${arch} guest is emulated`;
}
