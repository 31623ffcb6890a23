import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Resolves true once libvirt says `domain` is running, or false once
 * `ended()` says the build that makes it has ended first. It asks virsh a few
 * times a second: how long a domain takes to start depends on how busy the
 * machine is, so a test waits for this instead of a fixed time.
 */
export async function domainRunning(domain: string, ended: () => boolean): Promise<boolean> {
  for (;;) {
    if (ended()) return false;
    const state = await run('virsh', ['-c', 'qemu:///system', 'domstate', domain], { encoding: 'utf8' }).then(
      ({ stdout }) => stdout.trim(),
      () => 'not defined yet',
    );
    if (state === 'running') return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The name a virt-install command line in a build's log gives its domain, once the log has one. */
export function virtInstallDomain(log: string, pattern = /virt-install .*?--name (\S+)/): string | undefined {
  return pattern.exec(log)?.[1];
}
