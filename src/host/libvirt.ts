import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Host } from './host.js';

/** qemu:///system as root, qemu:///session otherwise, as the original. */
export function libvirtUri(host: Host): string {
  return host.isRoot ? 'qemu:///system' : 'qemu:///session';
}

/** virt-install's version text per host: asked once a build, however many VMs it starts. */
const virtInstallVersions = new WeakMap<Host, Promise<string>>();

/** What `virt-install --version` prints (`4.1.0`), or '' where it fails. */
export function virtInstallVersion(host: Host): Promise<string> {
  let version = virtInstallVersions.get(host);
  if (!version) {
    version = host
      .run(['virt-install', '--version'], { allowFailure: true, quiet: true, readOnly: true, captureStdout: true })
      .then((result) => (result.exitCode === 0 ? result.stdout.trim() : ''));
    virtInstallVersions.set(host, version);
  }
  return version;
}

/**
 * virt-install 4.0 renamed --os-variant to --osinfo and made it mandatory;
 * older releases only know --os-variant.
 */
export async function osinfoFlag(host: Host): Promise<'--osinfo' | '--os-variant'> {
  const major = Number(/^(\d+)\./.exec(await virtInstallVersion(host))?.[1] ?? '4');
  return major >= 4 ? '--osinfo' : '--os-variant';
}

/**
 * Where libvirt keeps a UEFI domain's NVRAM (its copy of the firmware's
 * variable store) when the domain does not name one: qemu.conf's nvram_dir
 * under qemu:///system, ~/.config/libvirt/qemu/nvram under the session.
 * libvirt removes it with `undefine --nvram`, but not when a transient domain
 * stops: the build removes the file itself.
 */
export function nvramPath(uri: string, domain: string): string {
  const folder =
    uri === 'qemu:///system'
      ? '/var/lib/libvirt/qemu/nvram'
      : join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'libvirt/qemu/nvram');
  return join(folder, `${domain}_VARS.fd`);
}
