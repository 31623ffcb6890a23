import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const NVRAM_DIR = '/var/lib/libvirt/qemu/nvram';

function nvramFiles(): string[] {
  try {
    return readdirSync(NVRAM_DIR);
  } catch {
    return [];
  }
}

/**
 * What a build may leave behind on this host, found the way an operator
 * would look: libvirt domains and their NVRAM files, loop devices, mounts, and staging folders.
 */
export function leftovers(workDir: string, stem: string): string[] {
  const found: string[] = [];
  for (const uri of ['qemu:///system']) {
    const domains = execFileSync('virsh', ['-c', uri, 'list', '--all', '--name'], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim())
      .filter((name) => name.startsWith(stem));
    found.push(...domains.map((name) => `domain ${name}`));
  }
  // The UEFI domains' NVRAM files: libvirt keeps them after a transient domain has gone.
  found.push(
    ...nvramFiles()
      .filter((name) => name.startsWith(stem))
      .map((name) => `NVRAM ${NVRAM_DIR}/${name}`),
  );
  const loops = execFileSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(workDir));
  found.push(...loops.map((line) => `loop ${line.trim()}`));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(`${tmpdir()}/image-factory.`) || line.includes(workDir));
  found.push(...mounts.map((line) => `mount ${line.split(' ')[4]}`));
  found.push(
    ...readdirSync(workDir)
      .filter((name) => name.includes('.partial'))
      .map((name) => `staging ${name}`),
  );
  found.push(
    ...readdirSync(tmpdir())
      .filter((name) => /^image-factory(-rpmdb|-guest)?\./.test(name))
      .map((name) => `temporary folder ${name}`),
  );
  found.push(...applianceProcesses(workDir));
  return found;
}

/**
 * libguestfs appliances of this run: a qemu whose command line names a disk
 * under the work folder, or a guestfish shell started with this run's
 * TMPDIR (its command line names no disk: the drive is added through its shell).
 */
export function applianceProcesses(workDir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let args: string[];
    let environ: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const line = args.join(' ');
    const qemu = /qemu/.test(args[0] ?? '') && line.includes(workDir);
    const guestfish = /guestfish$/.test(args[0] ?? '') && environ.includes(`TMPDIR=${tmpdir()}`);
    if (qemu || guestfish) found.push(`appliance process ${pid}: ${line.slice(0, 120)}`);
  }
  return found;
}
