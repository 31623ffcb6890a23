import { spawnSync } from 'node:child_process';
import { findProgram } from './programs.js';

/**
 * The programs a build runs as root (through `sudo -n` when not root). None
 * now: the scrub runs in the libguestfs appliance as the build's user (no
 * loop device, no mount), and setfacl runs only when the build is root.
 */
export const ROOT_COMMANDS: string[] = [];

/** A sudoers line that allows exactly the root commands of a build. */
export function sudoersLine(user = process.env.USER ?? process.env.LOGNAME ?? 'builder'): string {
  const paths = ROOT_COMMANDS.map((command) => findProgram(command) ?? command);
  if (!paths.length) return `# ${user}: a build runs no command as root`;
  return `${user} ALL=(root) NOPASSWD: ${paths.join(', ')}`;
}

/** Root commands that `sudo -n` will not run for this user. */
export function commandsSudoRefuses(): string[] {
  return ROOT_COMMANDS.filter((command) => {
    const path = findProgram(command) ?? command;
    return spawnSync('sudo', ['-n', '-l', path], { stdio: 'ignore' }).status !== 0;
  });
}
