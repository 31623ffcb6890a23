import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { serialConsole } from '../common/arch.js';
import { formatDuration } from '../common/units.js';
import type { Provisioner, ProvisionSpec } from '../config/provisioners.js';
import type { BuildContext } from '../context/build-context.js';
import type { Registration } from '../context/undo-list.js';
import { CommandError } from '../host/command-error.js';
import { AbortedError } from '../host/exec.js';
import {
  ansibleCommand,
  ansibleInventory,
  freeLoopbackPort,
  makeKeyPair,
  scpCommand,
  shellQuote,
  sshCommand,
  type GuestAccess,
} from '../vm/ssh.js';
import {
  describeFirmware,
  domainResource,
  domainRunning,
  virtInstallCommand,
  VmStepError,
} from '../vm/virt-install.js';
import { makeSeedIso, makeVmFolder, noCloudSeed, releaseAll } from './boot-test.js';
import { grantQemuSearch } from './install.js';
import { connectGuest, sshAccessConfig } from './guest-ssh.js';

/** Where the provisioning boot keeps its notes in the guest: /run, a tmpfs gone at power-off. */
export const GUEST_RUN = '/run/image-factory';

/**
 * Where scripts are copied to run: /run is often mounted noexec. Removed
 * before the power-off (and /var/tmp is emptied by the generalisation too).
 */
export const GUEST_SCRIPTS = '/var/tmp/image-factory-provision';

/** How long one provisioner took, and how it ended. */
export interface ProvisionerTime {
  provisioner: string;
  seconds: number;
}

export interface ProvisionResult {
  /** Seconds from starting the VM until SSH answered. */
  toSshSeconds: number;
  provisioners: ProvisionerTime[];
  /** Seconds from asking for the power-off until the VM had stopped. */
  powerOffSeconds: number;
}

/** A provisioner that failed: its line, where it came from, its exit code and last lines. */
export class ProvisionerError extends Error {
  constructor(
    readonly provisioner: Provisioner,
    readonly exitCode: number | null,
    readonly lastLines: readonly string[],
    why?: string,
  ) {
    const tail = lastLines.length ? `; its last lines:\n${lastLines.map((line) => `  | ${line}`).join('\n')}` : '';
    super(
      `${provisioner.where}: the provisioner '${provisioner.text}' ${why ?? `exited with code ${exitCode}`}${tail}`,
    );
    this.name = 'ProvisionerError';
  }
}

/** The folder, files and names of one provisioning boot. */
interface ProvisionVm {
  folder: string;
  keys: string;
  seedDir: string;
  seed: string;
  consoleLog: string;
  domain: string;
  token: string;
}

function provisionVm(ctx: BuildContext, staging: string): ProvisionVm {
  const folder = join(staging, `.provision-${ctx.host.uniqueSuffix(3)}`);
  return {
    folder,
    keys: join(folder, 'keys'),
    seedDir: join(folder, 'seed'),
    seed: join(folder, 'seed.iso'),
    consoleLog: join(folder, 'console.log'),
    domain: `${ctx.spec.stem}-provision-${ctx.host.uniqueSuffix(3)}`,
    token: ctx.host.uniqueSuffix(6),
  };
}

/**
 * The cloud-config lines that let the build in as root with its key, and
 * keep the boot from writing what the image must not keep: no user, no
 * hostname, no /etc/hosts, no locale, no apt sources. `bootcmd` runs before
 * cloud-init's ssh module: it notes what existed before, for the cleanup.
 */
export function provisionCloudConfig(publicKey: string): string[] {
  return [
    ...sshAccessConfig(publicKey),
    'preserve_hostname: true',
    'manage_etc_hosts: false',
    'locale: false',
    'apt:',
    '  preserve_sources_list: true',
    'bootcmd:',
    `  - [sh, -c, ${JSON.stringify(BOOTCMD)}]`,
  ];
}

/** The network configuration cloud-init writes for each renderer. */
const CLOUD_INIT_NETWORK_FILES = [
  '/etc/network/interfaces.d/50-cloud-init',
  '/etc/netplan/50-cloud-init.yaml',
  '/etc/systemd/network/10-cloud-init-*.network',
  '/etc/NetworkManager/system-connections/cloud-init-*.nmconnection',
  '/etc/sysconfig/network-scripts/ifcfg-*',
];

const BOOTCMD = [
  `mkdir -p ${GUEST_RUN}`,
  `[ -e /root/.ssh ] && touch ${GUEST_RUN}/root-ssh-existed`,
  `[ -e /root/.ssh/authorized_keys ] && touch ${GUEST_RUN}/authorized-keys-existed`,
  'true',
].join('; ');

/** What the finishing script prints once the traces are gone, just before it asks for the power-off. */
export const TRACES_REMOVED = 'image-factory: provisioning traces removed';

/**
 * The last thing run in the guest: the build's key out of root's
 * authorized_keys (the file and /root/.ssh too when the boot made them), the
 * network configuration cloud-init wrote and its state folder when this boot
 * made it, the journal of this boot (the
 * installed system had never run before it); then the power-off, asked for
 * in the same session: once the key is gone, no new session can log in.
 */
export function finishingScript(publicKey: string): string {
  const key = publicKey.trim().split(/\s+/)[1] ?? '';
  return [
    'set -u',
    // cloud-init's last stage may still be writing its state: let it end first.
    'cloud-init status --wait >/dev/null 2>&1 || true',
    `d=${GUEST_RUN}`,
    'f=/root/.ssh/authorized_keys',
    'if [ -f "$f" ]; then',
    `  grep -vF ${shellQuote(key)} "$f" > "$f.image-factory" || true`,
    '  if [ -s "$f.image-factory" ] || [ -e "$d/authorized-keys-existed" ]; then cat "$f.image-factory" > "$f"; else rm -f "$f"; fi',
    '  rm -f "$f.image-factory"',
    'fi',
    '[ -e "$d/root-ssh-existed" ] || rmdir /root/.ssh 2>/dev/null || true',
    // cloud-init writes its network files in its first stage, before bootcmd could note anything: a file
    // written since this boot began is this boot's. Its state folder goes whole when this boot made it
    // (its birth time; a file system that keeps none leaves the folder, which the scrub empties).
    "boot=$(awk '/^btime/ { print $2 }' /proc/stat)",
    `for n in ${CLOUD_INIT_NETWORK_FILES.join(' ')}; do`,
    '  [ -e "$n" ] && [ "$(stat -c %Y "$n")" -ge "$boot" ] && rm -f "$n"',
    'done',
    'born=$(stat -c %W /var/lib/cloud 2>/dev/null || echo 0)',
    '[ "$born" -gt 0 ] 2>/dev/null && [ "$born" -ge "$boot" ] && rm -rf /var/lib/cloud',
    `rm -rf ${GUEST_SCRIPTS}`,
    'journalctl --relinquish-var >/dev/null 2>&1 || true',
    'id=$(cat /etc/machine-id 2>/dev/null || true)',
    '[ -n "$id" ] && rm -rf "/var/log/journal/$id"',
    'sync',
    `echo ${shellQuote(TRACES_REMOVED)}`,
    // Queued in systemd, which goes on after this session ends.
    'systemctl --no-block poweroff || poweroff',
    '',
  ].join('\n');
}

/**
 * The provision step: boot the installed disk with a NoCloud seed that lets
 * the build's key in, pin the host key cloud-init prints on the console,
 * run the provisioners in order over SSH through a port forwarded to
 * 127.0.0.1, remove what the boot left, power off from inside and wait for
 * it. VM, NVRAM, seed, keys and console log are removed on every path.
 */
export async function provisionSystem(ctx: BuildContext, diskPath: string, staging: string): Promise<ProvisionResult> {
  const { spec, host, reporter } = ctx;
  const provision = spec.provision as ProvisionSpec;
  const vm = provisionVm(ctx, staging);
  const registrations: Registration[] = [];
  try {
    const publicKey = await prepareProvisioning(ctx, vm, diskPath, registrations);
    const port = host.live ? await freeLoopbackPort() : 2222;
    const access: GuestAccess = {
      port,
      keyFile: join(vm.keys, 'id_ed25519'),
      knownHosts: join(vm.keys, 'known_hosts'),
    };
    const command = await virtInstallCommand(host, spec, {
      name: vm.domain,
      accelerator: ctx.accelerator,
      memoryMiB: spec.bootTest.ramMiB,
      disks: [
        { path: diskPath, format: 'raw' },
        { path: vm.seed, format: 'raw', readonly: true },
      ],
      consoleLog: vm.consoleLog,
      boot: { kind: 'import' },
      sshForward: port,
    });
    reporter.info(
      `booting the installed system to provision it (${ctx.accelerator}, ${describeFirmware(spec.firmware)}); ` +
        `SSH through 127.0.0.1:${port} only, host key pinned from the console; ${provision.provisioners.length} provisioner(s):`,
    );
    provision.provisioners.forEach((p, index) => reporter.info(`  ${index + 1}. ${p.text}   (${p.where})`));
    registrations.push(ctx.cleanup.register(domainResource(host, spec, vm.domain)));
    await startVm(ctx, command);
    const started = Date.now();
    await connectGuest(ctx, {
      ...vm,
      access,
      timeoutMs: provision.timeoutMs,
      what: 'provision',
      limit: 'provision-timeout',
    });
    const toSshSeconds = (Date.now() - started) / 1000;
    if (host.live) reporter.info(`provision: SSH answered after ${formatDuration(Date.now() - started)}`);
    const times = await runProvisioners(ctx, vm, access, provision);
    const powerOffSeconds = await powerOff(ctx, vm, access, publicKey);
    return { toSshSeconds, provisioners: times, powerOffSeconds };
  } finally {
    await releaseAll(ctx, registrations, 'provision');
  }
}

/** The folder (for qemu: seed and console), the keys (private), the seed; returns the public key. */
async function prepareProvisioning(
  ctx: BuildContext,
  vm: ProvisionVm,
  diskPath: string,
  registrations: Registration[],
): Promise<string> {
  const { host, spec } = ctx;
  registrations.push(await makeVmFolder(ctx, vm.folder));
  registrations.push(...(await grantQemuSearch(ctx, diskPath, 'provisioning')));
  await host.makeDir(vm.keys, 0o700);
  await host.chmod(vm.keys, 0o700);
  const { keyFile } = await makeKeyPair(host, vm.keys, `image-factory-provision-${vm.token}`);
  const publicKey = host.live
    ? (await host.readFile(`${keyFile}.pub`)).toString('utf8').trim()
    : 'ssh-ed25519 KEY image-factory';
  await host.writeFile(join(vm.keys, 'ansible.cfg'), '', 0o600);
  await host.makeDir(vm.seedDir, 0o755);
  const seed = noCloudSeed(vm.token, serialConsole(spec.arch), provisionCloudConfig(publicKey));
  for (const [name, content] of Object.entries(seed)) await host.writeFile(join(vm.seedDir, name), content, 0o644);
  await makeSeedIso(host, vm.seedDir, vm.seed);
  return publicKey;
}

async function startVm(ctx: BuildContext, command: string[]): Promise<void> {
  try {
    await ctx.host.run(command, { onLine: (line) => ctx.reporter.output(line) });
  } catch (error) {
    if (error instanceof AbortedError) throw error;
    throw new VmStepError(
      `virt-install could not start the provisioning VM: ${error instanceof CommandError ? error.message : String(error)}`,
      [],
    );
  }
}

/** Each provisioner in order, its output in the log, its name and duration; the first failure fails the step. */
async function runProvisioners(
  ctx: BuildContext,
  vm: ProvisionVm,
  access: GuestAccess,
  provision: ProvisionSpec,
): Promise<ProvisionerTime[]> {
  const times: ProvisionerTime[] = [];
  for (const [index, provisioner] of provision.provisioners.entries()) {
    const started = Date.now();
    const title = `provisioner ${index + 1}/${provision.provisioners.length}: ${provisioner.text}`;
    ctx.reporter.section?.(`Provision, ${title}`);
    ctx.reporter.info(title);
    await runProvisioner(ctx, vm, access, provision, provisioner, index);
    const seconds = (Date.now() - started) / 1000;
    times.push({ provisioner: provisioner.text, seconds });
    ctx.reporter.info(`provisioner ${index + 1} (${provisioner.kind}) done in ${seconds.toFixed(1)} s`);
  }
  return times;
}

/** `set -a` lines that a guest shell sources from stdin: the variables never appear in a command line. */
export function environmentScript(env: ProvisionSpec['env']): string {
  return env.map((variable) => `${variable.name}=${shellQuote(variable.value)}\n`).join('');
}

/** A command line run by the guest's /bin/sh as root, with provision-env's variables. */
export function guestShell(command: string, withEnv: boolean): string {
  const line = `exec /bin/sh -c ${shellQuote(command)}`;
  return withEnv ? `set -a && . /dev/stdin && set +a && ${line}` : line;
}

// Long: one case per kind of provisioner, each a few lines.
async function runProvisioner(
  ctx: BuildContext,
  vm: ProvisionVm,
  access: GuestAccess,
  provision: ProvisionSpec,
  provisioner: Provisioner,
  index: number,
): Promise<void> {
  const withEnv = provision.env.length > 0;
  const input = withEnv ? environmentScript(provision.env) : undefined;
  switch (provisioner.kind) {
    case 'file':
      await guestRun(ctx, provisioner, scpCommand(access, provisioner.source, provisioner.dest), provision);
      return;
    case 'script': {
      const remote = `${GUEST_SCRIPTS}/script-${index + 1}`;
      await guestRun(ctx, provisioner, sshCommand(access, `mkdir -p -m 700 ${GUEST_SCRIPTS}`), provision);
      await guestRun(ctx, provisioner, scpCommand(access, provisioner.path, remote), provision);
      const run = [remote, ...provisioner.args].map(shellQuote).join(' ');
      const line = `chmod 700 ${remote} && ${guestShell(run, withEnv)}`;
      await guestRun(ctx, provisioner, sshCommand(access, line), provision, input);
      return;
    }
    case 'shell':
      await guestRun(ctx, provisioner, sshCommand(access, guestShell(provisioner.command, withEnv)), provision, input);
      return;
    case 'ansible': {
      const inventory = join(vm.keys, 'inventory.ini');
      await ctx.host.writeFile(inventory, ansibleInventory(access), 0o600);
      const files = { inventory, config: join(vm.keys, 'ansible.cfg') };
      const { argv, env } = ansibleCommand(files, provisioner.playbook, provisioner.options);
      await guestRun(ctx, provisioner, argv, provision, undefined, { ...process.env, ...env });
      return;
    }
  }
}

/** One command of a provisioner, its lines in the log, within provision-timeout; a failure names the provisioner. */
async function guestRun(
  ctx: BuildContext,
  provisioner: Provisioner,
  argv: string[],
  provision: ProvisionSpec,
  input?: string,
  env?: NodeJS.ProcessEnv,
): Promise<void> {
  const limit = AbortSignal.timeout(provision.timeoutMs);
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, limit]) : limit;
  let result;
  try {
    result = await ctx.host.run(argv, {
      allowFailure: true,
      onLine: (line) => ctx.reporter.output(`[${provisioner.kind}] ${line}`),
      signal,
      input,
      env,
      tailLines: 15,
    });
  } catch (error) {
    if (error instanceof AbortedError && limit.aborted && !ctx.signal?.aborted)
      throw new ProvisionerError(
        provisioner,
        null,
        [],
        `did not end within ${formatDuration(provision.timeoutMs)} (provision-timeout)`,
      );
    throw error;
  }
  if (result.exitCode !== 0) {
    const how = result.exitCode === 255 && argv[0] === 'ssh' ? 'lost its SSH connection (exit code 255)' : undefined;
    throw new ProvisionerError(provisioner, result.exitCode, result.lastLines, how);
  }
}

/** The finishing script, then a power-off from inside, waited for (provision-timeout). */
async function powerOff(ctx: BuildContext, vm: ProvisionVm, access: GuestAccess, publicKey: string): Promise<number> {
  const { host, reporter } = ctx;
  reporter.section?.("Provision: remove the boot's traces, power off");
  const started = Date.now();
  const finish = await host.run(sshCommand(access, '/bin/sh -s'), {
    allowFailure: true,
    captureStdout: true,
    input: finishingScript(publicKey),
  });
  // The power-off may end the session before ssh reads the exit status (255): the marker says the traces went.
  if (host.live && !finish.stdout.includes(TRACES_REMOVED))
    throw new VmStepError(
      `removing the provisioning boot's traces (key, network configuration, journal) failed with exit code ` +
        `${finish.exitCode}: ${finish.lastLines.join(' / ')}`,
      [],
    );
  if (!host.live) return 0;
  const deadline = started + (ctx.spec.provision as ProvisionSpec).timeoutMs;
  while (await domainRunning(host, vm.domain)) {
    if (Date.now() >= deadline)
      throw new VmStepError('the provisioning VM did not power off within provision-timeout', []);
    try {
      await sleep(1_000, undefined, { signal: ctx.signal });
    } catch {
      throw new AbortedError('interrupted while the provisioning VM powered off');
    }
  }
  const seconds = (Date.now() - started) / 1000;
  reporter.info(`provision: the VM powered off after ${seconds.toFixed(1)} s; ${basename(vm.folder)} is removed`);
  return seconds;
}
