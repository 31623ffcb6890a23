import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../common/units.js';
import type { BuildContext } from '../context/build-context.js';
import { AbortedError } from '../host/exec.js';
import { ConsoleFollower } from '../vm/console.js';
import {
  ansibleCommand,
  ansibleInventory,
  consoleHostKeys,
  knownHostsText,
  shellQuote,
  sshCommand,
  type GuestAccess,
} from '../vm/ssh.js';
import { domainRunning, VmStepError } from '../vm/virt-install.js';

/** The printed marker: `image-factory-boot-test <token>: cloud-init finished …`. */
export const CLOUD_INIT_MARKER = 'image-factory-boot-test';

/** The console lines that say cloud-init got to its final stage. */
export function cloudInitPattern(token: string): RegExp {
  return new RegExp(`${CLOUD_INIT_MARKER} ${token}: cloud-init (?:finished|runcmd ran)`);
}

/** A VM of the build that the build reaches over SSH. */
export interface GuestVm {
  domain: string;
  /** The seed's token: cloud-init's marker names it. */
  token: string;
  consoleLog: string;
  access: GuestAccess;
  timeoutMs: number;
  /** The step, for the log (`provision`, `boot test`). */
  what: string;
  /** The option whose time limit applies. */
  limit: string;
}

/**
 * Wait until cloud-init printed the host keys and its marker on the console,
 * pin the keys (known_hosts for the forwarded port), then until SSH answers
 * with one of them; all within the time limit, or a VmStepError with the
 * console's last screen. A recording host pins a stand-in key.
 */
export async function connectGuest(ctx: BuildContext, vm: GuestVm): Promise<void> {
  const { host } = ctx;
  if (!host.live) {
    await host.writeFile(vm.access.knownHosts, knownHostsText(vm.access.port, ['ssh-ed25519 KEY']), 0o600);
    return;
  }
  const screen = new ConsoleFollower(vm.consoleLog);
  try {
    await waitForSsh(ctx, vm, screen);
  } finally {
    await screen.stop();
  }
}

async function waitForSsh(ctx: BuildContext, vm: GuestVm, screen: ConsoleFollower): Promise<void> {
  const { host } = ctx;
  const deadline = Date.now() + vm.timeoutMs;
  const marker = cloudInitPattern(vm.token);
  let pinned = false;
  for (;;) {
    await screen.poll();
    const keys = consoleHostKeys(screen.text);
    if (!pinned && keys && marker.test(screen.text)) {
      await host.writeFile(vm.access.knownHosts, knownHostsText(vm.access.port, keys), 0o600);
      const types = keys.map((key) => key.split(' ')[0]).join(', ');
      ctx.reporter.info(`${vm.what}: pinned the guest's host keys from its console: ${types}`);
      pinned = true;
    }
    if (pinned) {
      const probe = await host.run(sshCommand(vm.access, 'true'), { allowFailure: true, quiet: true });
      if (probe.exitCode === 0) return;
    }
    const late = Date.now() >= deadline;
    if (late || !(await domainRunning(host, vm.domain)))
      throw new VmStepError(noSshReason(vm, pinned, late), screen.screen.lines());
    try {
      await sleep(2_000, undefined, { signal: ctx.signal });
    } catch {
      throw new AbortedError(`interrupted while waiting for SSH (${vm.what})`);
    }
  }
}

function noSshReason(vm: GuestVm, pinned: boolean, late: boolean): string {
  const how = late ? `within ${formatDuration(vm.timeoutMs)} (${vm.limit})` : 'before the VM stopped';
  return pinned
    ? `${vm.what}: the VM's SSH did not let the build in ${how}, though cloud-init printed its host keys ` +
        '(is sshd running, and root allowed to log in with a key?)'
    : `${vm.what}: the VM did not get as far as cloud-init printing its SSH host keys and finishing ${how} ` +
        '(is cloud-init installed with the NoCloud datasource, and openssh-server?)';
}

/** The cloud-config lines that let root in with the build's key, and make no user. */
export function sshAccessConfig(publicKey: string): string[] {
  return ['disable_root: false', 'users: []', 'ssh_authorized_keys:', `  - ${JSON.stringify(publicKey.trim())}`];
}

/** One of the boot test's own checks: a boot-test-command, or the boot-test-playbook. */
export interface BootCheck {
  command: string;
  /** Where it was written (file:line). */
  where: string;
  exitCode: number | null;
  seconds: number;
  lastLines: readonly string[];
}

/** One check, its output in the log, within the boot test's time limit. */
async function runCheck(
  ctx: BuildContext,
  check: { command: string; where: string },
  argv: string[],
  env?: NodeJS.ProcessEnv,
): Promise<BootCheck> {
  const limit = AbortSignal.timeout(ctx.spec.bootTest.timeoutMs);
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, limit]) : limit;
  const started = Date.now();
  let result;
  try {
    result = await ctx.host.run(argv, {
      allowFailure: true,
      onLine: (line) => ctx.reporter.output(`[boot-test] ${line}`),
      signal,
      env,
      tailLines: 15,
    });
  } catch (error) {
    if (!(error instanceof AbortedError && limit.aborted && !ctx.signal?.aborted)) throw error;
    result = { exitCode: null, lastLines: [`did not end within ${formatDuration(ctx.spec.bootTest.timeoutMs)}`] };
  }
  const seconds = (Date.now() - started) / 1000;
  ctx.reporter.info(`boot test: '${check.command}' exited with code ${result.exitCode} after ${seconds.toFixed(1)} s`);
  return { ...check, exitCode: result.exitCode, seconds, lastLines: result.lastLines };
}

/**
 * The boot test's own checks in the booted image: each boot-test-command as
 * root with /bin/sh -c, then the boot-test-playbook; all run, and the first
 * that failed fails the boot test with its command, exit code and output.
 */
export async function runBootChecks(
  ctx: BuildContext,
  access: GuestAccess,
  ansible: { inventory: string; config: string },
): Promise<BootCheck[]> {
  const { bootTest } = ctx.spec;
  const checks: BootCheck[] = [];
  for (const command of bootTest.commands ?? []) {
    const argv = sshCommand(access, `exec /bin/sh -c ${shellQuote(command.text)}`);
    checks.push(await runCheck(ctx, { command: command.text, where: command.where }, argv));
  }
  if (bootTest.playbook !== undefined) {
    await ctx.host.writeFile(ansible.inventory, ansibleInventory(access), 0o600);
    const { argv, env } = ansibleCommand(ansible, bootTest.playbook, []);
    const check = { command: `ansible-playbook ${bootTest.playbook}`, where: '[boot-test-playbook]' };
    checks.push(await runCheck(ctx, check, argv, { ...process.env, ...env }));
  }
  const failed = checks.find((check) => check.exitCode !== 0);
  if (failed) {
    const tail = failed.lastLines.length
      ? `; its last lines:\n${failed.lastLines.map((l) => `  | ${l}`).join('\n')}`
      : '';
    throw new VmStepError(
      `the boot test's check '${failed.command}' (${failed.where}) exited with code ${failed.exitCode}${tail}`,
      [],
    );
  }
  return checks;
}
