import { spawnSync } from 'node:child_process';
import { findProgram } from './programs.js';

/** The programs a build runs as root (through `sudo -n` when not root). */
export const ROOT_COMMANDS = [
  'losetup',
  'blkid',
  'mount',
  'umount',
  'fstrim',
  'zerofree',
  'find',
  'cat',
  'rm',
  'cp',
  'rpm',
  'truncate',
];

/** A sudoers line that allows exactly the root commands of a build. */
export function sudoersLine(user = process.env.USER ?? process.env.LOGNAME ?? 'builder'): string {
  const paths = ROOT_COMMANDS.map((command) => findProgram(command) ?? command);
  return `${user} ALL=(root) NOPASSWD: ${paths.join(', ')}`;
}

/** Root commands that `sudo -n` will not run for this user. */
export function commandsSudoRefuses(): string[] {
  return ROOT_COMMANDS.filter((command) => {
    const path = findProgram(command) ?? command;
    return spawnSync('sudo', ['-n', '-l', path], { stdio: 'ignore' }).status !== 0;
  });
}
