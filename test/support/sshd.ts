import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, serveOnPort, type Teardown } from './rsync-daemon.js';

export interface Sshd {
  port: number;
  /** Private key the server accepts for root. */
  keyFile: string;
  /** The server's public host key file. */
  hostKeyFile: string;
  /** `ssh` with the options that reach this server: for RSYNC_RSH or rsync -e. */
  sshCommand: string[];
  stop(): Promise<void>;
}

const run = promisify(execFile);

/**
 * A real OpenSSH server on 127.0.0.1 that lets root in with a key made for
 * the test (and nothing else). Stops when the test ends when `t` is given.
 */
export async function startSshd(t: Teardown | undefined): Promise<Sshd> {
  const dir = await mkdtemp(join(tmpdir(), 'sshd-'));
  const hostKey = join(dir, 'host_ed25519_key');
  const keyFile = join(dir, 'client_ed25519_key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-host', '-f', hostKey]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-client', '-f', keyFile]);
  const authorizedKeys = join(dir, 'authorized_keys');
  await writeFile(authorizedKeys, await readFile(`${keyFile}.pub`), { mode: 0o600 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  // sshd refuses to start without its privilege separation folder (no systemd creates it here).
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const stop = await serveOnPort(['/usr/sbin/sshd', '-D', '-e', '-f', config, '-p', String(port)], port, dir, t);
  return {
    port,
    keyFile,
    hostKeyFile: `${hostKey}.pub`,
    sshCommand: [
      'ssh',
      '-p',
      String(port),
      '-i',
      keyFile,
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'LogLevel=ERROR',
    ],
    stop,
  };
}
