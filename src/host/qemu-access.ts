import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The user libvirt runs qemu as under qemu:///system: `user` in qemu.conf,
 * else the distribution's default (libvirt-qemu on Debian/Ubuntu, qemu on
 * Fedora/RHEL).
 */
export function qemuSystemUser(): string | undefined {
  try {
    const conf = readFileSync('/etc/libvirt/qemu.conf', 'utf8');
    const match = /^\s*user\s*=\s*"([^"]+)"/m.exec(conf);
    if (match) return match[1].replace(/^\+/, '');
  } catch {
    // no qemu.conf: fall back to the packaged defaults
  }
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const user of ['libvirt-qemu', 'qemu']) {
    if (new RegExp(`^${user}:`, 'm').test(passwd)) return user;
  }
  return undefined;
}

/**
 * Folders on the way to `path` that another user cannot pass through: no
 * search (x) permission for "other". Root's home (700) and mkdtemp folders are
 * the usual ones.
 */
export function foldersWithoutSearch(path: string): string[] {
  const blocked: string[] = [];
  let dir = dirname(path);
  for (;;) {
    try {
      if ((statSync(dir).mode & 0o001) === 0) blocked.push(dir);
    } catch {
      // a folder that cannot be inspected is left to the install to report
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return blocked.reverse();
}
