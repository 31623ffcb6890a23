import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The programs a build runs as root (through `sudo -n` when not root). */
export const ROOT_COMMANDS = ['losetup', 'blkid', 'mount', 'umount', 'fstrim', 'zerofree', 'ls', 'cat', 'rm'];

/** Full path of a program on PATH (sbin folders included), or undefined. */
export function whichProgram(program: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/local/sbin', '/usr/sbin', '/sbin']);
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return join(dir, program);
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** A sudoers line that allows exactly the root commands of a build. */
export function sudoersLine(user = process.env.USER ?? process.env.LOGNAME ?? 'builder'): string {
  const paths = ROOT_COMMANDS.map((command) => whichProgram(command) ?? command);
  return `${user} ALL=(root) NOPASSWD: ${paths.join(', ')}`;
}

/** Root commands that `sudo -n` will not run for this user. */
export function commandsSudoRefuses(): string[] {
  return ROOT_COMMANDS.filter((command) => {
    const path = whichProgram(command) ?? command;
    return spawnSync('sudo', ['-n', '-l', path], { stdio: 'ignore' }).status !== 0;
  });
}
