/**
 * The guest's host key is pinned from what cloud-init printed on the
 * console: a real OpenSSH server on 127.0.0.1 whose host key is the one on
 * the console is reached; one whose key differs is refused, and its key is
 * not added anywhere.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import {
  ansibleCommand,
  ansibleInventory,
  consoleHostKeys,
  knownHostsText,
  scpCommand,
  sshCommand,
  type GuestAccess,
} from '../../src/vm/ssh.js';
import { startSshd } from '../support/sshd.js';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'ssh-pinning-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A console as a Debian 12 guest's cloud-init prints it, with a kernel message and a log prefix in the way. */
function recordedConsole(keys: string[]): string {
  return [
    "[   12.345678] cloud-init[512]: Cloud-init v. 22.4.2 running 'modules:final'",
    '<14>Dec  6 15:40:01 cloud-init: #############################################################',
    '<14>Dec  6 15:40:01 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----',
    '<14>Dec  6 15:40:01 cloud-init: 256 SHA256:AbCd root@debian (ED25519)',
    '<14>Dec  6 15:40:01 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----',
    '-----BEGIN SSH HOST KEY KEYS-----',
    ...keys.map((key, index) => (index === 0 ? `${key} root@debian` : `[   13.000001] random: crng init done\n${key}`)),
    '-----END SSH HOST KEY KEYS-----',
    'debian login: ',
  ].join('\n');
}

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4m2zDZ0bVj5pL6W3jx2zVqX5vYj0HnT1vNhP5wq2Yx';
const ECDSA = 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPx=';

describe('host keys from the console', () => {
  test('the keys of the last whole block, as type and key, whatever is printed between them', () => {
    assert.deepEqual(consoleHostKeys(recordedConsole([ED25519, ECDSA])), [ED25519, ECDSA]);
  });

  test('nothing until the block has ended, and nothing from a block without keys', () => {
    const text = recordedConsole([ED25519]);
    assert.equal(consoleHostKeys(text.slice(0, text.indexOf('-----END SSH HOST KEY KEYS'))), undefined);
    assert.equal(consoleHostKeys('-----BEGIN SSH HOST KEY KEYS-----\n-----END SSH HOST KEY KEYS-----\n'), undefined);
    assert.equal(consoleHostKeys('debian login: '), undefined);
  });

  test('known_hosts names only the forwarded loopback port', () => {
    assert.equal(knownHostsText(2222, [ED25519]), `[127.0.0.1]:2222 ${ED25519}\n`);
  });
});

describe('a stand-in guest on 127.0.0.1', () => {
  test('is reached when its host key is the one on the console, and refused when it differs', async (t) => {
    const sshd = await startSshd(t);
    const hostKey = readFileSync(sshd.hostKeyFile, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const pinned = consoleHostKeys(recordedConsole([hostKey]));
    assert.deepEqual(pinned, [hostKey]);

    const goodHosts = join(scratch, 'good_known_hosts');
    writeFileSync(goodHosts, knownHostsText(sshd.port, pinned ?? []), { mode: 0o600 });
    const good: GuestAccess = { port: sshd.port, keyFile: sshd.keyFile, knownHosts: goodHosts };
    const [ssh, ...args] = sshCommand(good, 'echo reached');
    const { stdout } = await run(ssh, args);
    assert.equal(stdout.trim(), 'reached');

    // Another guest's console: its key is not the server's.
    const otherHosts = join(scratch, 'other_known_hosts');
    writeFileSync(otherHosts, knownHostsText(sshd.port, consoleHostKeys(recordedConsole([ED25519])) ?? []));
    const other: GuestAccess = { ...good, knownHosts: otherHosts };
    for (const argv of [
      sshCommand(other, 'echo reached'),
      scpCommand(other, sshd.hostKeyFile, join(scratch, 'copied')),
    ]) {
      await assert.rejects(run(argv[0], argv.slice(1)), (error: { code: number; stderr: string; stdout: string }) => {
        assert.ok(error.code !== 0, `${argv[0]} exited ${error.code}`);
        if (argv[0] === 'ssh') assert.match(error.stderr, /Host key verification failed/);
        assert.doesNotMatch(error.stdout, /reached/);
        return true;
      });
    }
    assert.equal(existsSync(join(scratch, 'copied')), false, 'scp copied nothing');
    // Never trusted on first use: nothing was added to the pinned file.
    assert.equal(readFileSync(otherHosts, 'utf8'), knownHostsText(sshd.port, [ED25519]));

    // No key at all for the port (an empty known_hosts) is refused too.
    const emptyHosts = join(scratch, 'empty_known_hosts');
    writeFileSync(emptyHosts, '');
    const [ssh2, ...args2] = sshCommand({ ...good, knownHosts: emptyHosts }, 'true');
    await assert.rejects(run(ssh2, args2), /Host key verification failed/);
    assert.equal(readFileSync(emptyHosts, 'utf8'), '');
  });

  test('ansible-playbook reaches it with its key pinned, one connection a task (pipelined), and is refused when the key differs', async (t) => {
    if (!existsSync('/usr/bin/ansible-playbook')) {
      t.skip('no ansible-playbook here (Debian: ansible-core, which .ci/run installs)');
      return;
    }
    const sshd = await startSshd(t);
    const hostKey = readFileSync(sshd.hostKeyFile, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const folder = mkdtempSync(join(scratch, 'ansible-'));
    const files = { inventory: join(folder, 'inventory.ini'), config: join(folder, 'ansible.cfg') };
    writeFileSync(files.config, '');
    const playbook = join(folder, 'site.yml');
    const marker = join(folder, 'ran');
    writeFileSync(
      playbook,
      `- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: touch ${marker}\n`,
    );
    const play = async (keys: string[]) => {
      const knownHosts = join(folder, 'known_hosts');
      writeFileSync(knownHosts, knownHostsText(sshd.port, keys), { mode: 0o600 });
      writeFileSync(files.inventory, ansibleInventory({ port: sshd.port, keyFile: sshd.keyFile, knownHosts }));
      const { argv, env } = ansibleCommand(files, playbook, ['-vvv']);
      return run(argv[0], argv.slice(1), { env: { ...process.env, ...env }, cwd: folder });
    };
    const { stdout } = await play([hostKey]);
    assert.ok(existsSync(marker), 'the task ran');
    // Without pipelining, each task puts its module in a temporary file first (a "PUT" line with -vvv).
    assert.doesNotMatch(stdout, /\bPUT\b/);
    rmSync(marker);
    await assert.rejects(play([ED25519]), (error: { stdout: string }) => {
      assert.match(error.stdout, /UNREACHABLE|Host key verification failed/);
      return true;
    });
    assert.equal(existsSync(marker), false, 'nothing ran on a server whose key differs');
  });

  test("Ansible's inventory keeps the same pinning", () => {
    const inventory = ansibleInventory({ port: 2200, keyFile: '/k/id_ed25519', knownHosts: '/k/known hosts' });
    assert.match(inventory, /ansible_host=127\.0\.0\.1 ansible_port=2200 ansible_user=root/);
    assert.match(inventory, /StrictHostKeyChecking=yes/);
    assert.match(inventory, /'UserKnownHostsFile=\/k\/known hosts'/);
  });
});
