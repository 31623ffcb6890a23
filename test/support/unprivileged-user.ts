import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { sudoersLine } from '../../src/host/privileges.js';

export const BUILD_USER = 'ifbuilder';
const SUDOERS = '/etc/sudoers.d/image-factory-test';

/** A normal user for builds through qemu:///session, made by the test setup. */
export function ensureBuildUser(): { uid: number; home: string } {
  if (spawnSync('id', ['-u', BUILD_USER]).status !== 0) {
    execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', BUILD_USER]);
  }
  const uid = Number(execFileSync('id', ['-u', BUILD_USER], { encoding: 'utf8' }).trim());
  return { uid, home: `/home/${BUILD_USER}` };
}

/** Allow exactly the build's root commands, as the README tells users to. */
export function allowRootCommands(): void {
  writeFileSync(SUDOERS, `${sudoersLine(BUILD_USER)}\n`, { mode: 0o440 });
  execFileSync('visudo', ['--check', '--file', SUDOERS], { stdio: 'ignore' });
}

export function revokeRootCommands(): void {
  rmSync(SUDOERS, { force: true });
}

/** Domains of the build user's qemu:///session whose name starts with stem. */
export function sessionDomains(stem: string): string[] {
  const out = spawnSync(
    'runuser',
    ['-u', BUILD_USER, '--', 'virsh', '-c', 'qemu:///session', 'list', '--all', '--name'],
    {
      encoding: 'utf8',
      env: { ...process.env, HOME: `/home/${BUILD_USER}` },
    },
  );
  return out.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => name.startsWith(stem));
}
