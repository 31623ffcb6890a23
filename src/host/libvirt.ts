import type { Host } from './host.js';

/** qemu:///system as root, qemu:///session otherwise, as the original. */
export function libvirtUri(host: Host): string {
  return host.isRoot ? 'qemu:///system' : 'qemu:///session';
}

/**
 * virt-install 4.0 renamed --os-variant to --osinfo and made it mandatory;
 * older releases only know --os-variant.
 */
export async function osinfoFlag(host: Host): Promise<'--osinfo' | '--os-variant'> {
  const result = await host.run(['virt-install', '--version'], {
    allowFailure: true,
    quiet: true,
    readOnly: true,
    captureStdout: true,
  });
  const major = Number(/^(\d+)\./.exec(result.stdout.trim())?.[1] ?? '4');
  return major >= 4 ? '--osinfo' : '--os-variant';
}
