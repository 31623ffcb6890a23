import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Firmware } from '../config/image-spec.js';

/** Where QEMU's firmware descriptors live (the ones libvirt chooses from), system's first as libvirt reads them. */
export const FIRMWARE_DESCRIPTOR_DIRS = ['/etc/qemu/firmware', '/usr/share/qemu/firmware'];

/** The parts of a QEMU firmware descriptor (docs/interop/firmware.json) that decide whether it fits. */
interface FirmwareDescriptor {
  'interface-types'?: unknown;
  targets?: Array<{ architecture?: unknown }>;
  features?: unknown;
}

function readDescriptors(dirs: readonly string[]): FirmwareDescriptor[] {
  const descriptors: FirmwareDescriptor[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((name) => name.endsWith('.json'));
    } catch {
      continue;
    }
    for (const name of names) {
      try {
        descriptors.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as FirmwareDescriptor);
      } catch {
        // A file that is not a descriptor: libvirt skips it too.
      }
    }
  }
  return descriptors;
}

function listIncludes(list: unknown, value: string): boolean {
  return Array.isArray(list) && list.includes(value);
}

/**
 * Whether libvirt can find UEFI firmware of this kind for the architecture:
 * a descriptor of a UEFI firmware for it, with Secure Boot and enrolled keys
 * for uefi-secure. bios needs none (SeaBIOS comes with QEMU).
 */
export function uefiFirmwareInstalled(
  firmware: Firmware,
  architecture = 'x86_64',
  dirs: readonly string[] = FIRMWARE_DESCRIPTOR_DIRS,
): boolean {
  if (firmware === 'bios') return true;
  return readDescriptors(dirs).some(
    (descriptor) =>
      listIncludes(descriptor['interface-types'], 'uefi') &&
      (descriptor.targets ?? []).some((target) => target.architecture === architecture) &&
      (firmware !== 'uefi-secure' ||
        (listIncludes(descriptor.features, 'secure-boot') && listIncludes(descriptor.features, 'enrolled-keys'))),
  );
}
