/**
 * SSH into a build's VM: only through a port that qemu's user networking
 * forwards to 127.0.0.1, with a key pair made for this build, and with the
 * guest's host key pinned from what cloud-init printed on the VM's serial
 * console, never trusted on first use.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Host } from '../host/host.js';

/** The address every connection to a guest goes to: the forwarded port on the loopback, nothing else. */
export const GUEST_ADDRESS = '127.0.0.1';

/** What it takes to reach one VM. */
export interface GuestAccess {
  port: number;
  /** The build's private key (its public half beside it, `.pub`). */
  keyFile: string;
  /** known_hosts with the pinned host keys of the guest at the forwarded port. */
  knownHosts: string;
}

/** The key pair of one VM, in a private folder: the public key goes into the NoCloud seed. */
export async function makeKeyPair(host: Host, folder: string, comment: string): Promise<{ keyFile: string }> {
  const keyFile = join(folder, 'id_ed25519');
  await host.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', keyFile]);
  return { keyFile };
}

export const HOST_KEYS_BEGIN = '-----BEGIN SSH HOST KEY KEYS-----';
export const HOST_KEYS_END = '-----END SSH HOST KEY KEYS-----';

const KEY_LINE = /(?:^|\s)((?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+/]+={0,3})(?=\s|$)/;

/**
 * The host keys cloud-init printed on the console (its keys-to-console
 * module: `-----BEGIN SSH HOST KEY KEYS-----`, one `type base64 comment` a
 * line, `-----END …`), as `type base64`; undefined until a whole block has
 * been printed. The last whole block counts. Other text between the lines (a
 * kernel message, a log prefix) is passed over.
 */
export function consoleHostKeys(text: string): string[] | undefined {
  const end = text.lastIndexOf(HOST_KEYS_END);
  if (end < 0) return undefined;
  const begin = text.lastIndexOf(HOST_KEYS_BEGIN, end);
  if (begin < 0) return undefined;
  const keys = text
    .slice(begin + HOST_KEYS_BEGIN.length, end)
    .split('\n')
    .map((line) => KEY_LINE.exec(line)?.[1])
    .filter((key): key is string => key !== undefined);
  return keys.length ? [...new Set(keys)] : undefined;
}

/** known_hosts for the forwarded port: only these keys are accepted for `[127.0.0.1]:port`. */
export function knownHostsText(port: number, keys: readonly string[]): string {
  return keys.map((key) => `[${GUEST_ADDRESS}]:${port} ${key}\n`).join('');
}

/**
 * The options every ssh, scp and Ansible connection gets: no user or system
 * configuration, only the build's key, only the pinned host keys (a key that
 * differs is refused, an unknown one is never added), no password prompt.
 */
export function sshOptions(access: GuestAccess): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    access.keyFile,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${access.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'UpdateHostKeys=no',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=30',
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=8',
    '-o',
    'LogLevel=ERROR',
  ];
}

/** ssh running one command line as root in the guest. */
export function sshCommand(access: GuestAccess, remote: string): string[] {
  return ['ssh', ...sshOptions(access), '-p', String(access.port), `root@${GUEST_ADDRESS}`, '--', remote];
}

/** scp copying a host file or folder (recursively) to an absolute path in the guest. */
export function scpCommand(access: GuestAccess, source: string, dest: string): string[] {
  return [
    'scp',
    ...sshOptions(access),
    '-q',
    '-r',
    '-P',
    String(access.port),
    '--',
    source,
    `root@${GUEST_ADDRESS}:${dest}`,
  ];
}

/** A word as a POSIX shell reads it back unchanged. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An Ansible inventory of one host, the guest, reached as root through the forwarded port with the pinned keys. */
export function ansibleInventory(access: GuestAccess): string {
  const common = sshOptions(access)
    .filter((option, index, all) => option !== '-i' && all[index - 1] !== '-i')
    .map(shellQuote)
    .join(' ');
  return [
    '[image]',
    `guest ansible_host=${GUEST_ADDRESS} ansible_port=${access.port} ansible_user=root ` +
      `ansible_ssh_private_key_file=${shellQuote(access.keyFile)} ansible_ssh_common_args=${shellQuote(common)}`,
    '',
  ].join('\n');
}

/**
 * ansible-playbook against the guest. `config`: an ansible.cfg of the
 * build's own (empty), so that none in the working folder or the home folder
 * turns host key checking off; the environment keeps it on.
 */
export function ansibleCommand(
  files: { inventory: string; config: string },
  playbook: string,
  options: readonly string[],
): { argv: string[]; env: Record<string, string> } {
  return {
    argv: ['ansible-playbook', '-i', files.inventory, ...options, playbook],
    env: {
      ANSIBLE_HOST_KEY_CHECKING: 'True',
      // No SSH master left running after the playbook.
      ANSIBLE_SSH_ARGS: '-o ControlMaster=no -o ControlPath=none',
      // Without a master each SSH operation is a new connection, slow in a TCG guest: a module goes through
      // the one connection that runs it (no temporary file put and removed). It logs in as root: no sudo,
      // so no requiretty in the way.
      ANSIBLE_PIPELINING: 'True',
      ANSIBLE_CONFIG: files.config,
      ANSIBLE_RETRY_FILES_ENABLED: 'False',
      ANSIBLE_NOCOLOR: 'True',
      ANSIBLE_FORCE_COLOR: 'False',
      PYTHONUNBUFFERED: '1',
    },
  };
}

/**
 * A free TCP port on 127.0.0.1 for qemu to forward to the guest's SSH. qemu
 * binds it itself a moment later: a clash (another program took it in
 * between) makes virt-install fail, and the step says so.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, GUEST_ADDRESS, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
