import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../common/units.js';
import type { ImageFormat } from '../config/image-spec.js';
import { QEMU_FORMAT } from './convert.js';
import { CommandError } from '../host/command-error.js';
import { serialConsole } from '../common/arch.js';
import { AbortedError } from '../host/exec.js';
import { ConsoleFollower } from '../vm/console.js';
import type { BuildContext } from '../context/build-context.js';
import { grantQemuSearch } from './install.js';
import { throttled } from '../common/reporter.js';
import type { Registration } from '../context/undo-list.js';
import {
  CLOUD_INIT_MARKER,
  cloudInitPattern,
  connectGuest,
  runBootChecks,
  sshAccessConfig,
  type BootCheck,
} from './guest-ssh.js';
import { freeLoopbackPort, makeKeyPair, type GuestAccess } from '../vm/ssh.js';

export { CLOUD_INIT_MARKER, cloudInitPattern };
import {
  describeFirmware,
  domainResource,
  domainRunning,
  virtInstallCommand,
  VmStepError,
} from '../vm/virt-install.js';

/** What the boot test saw. */
export interface BootTestResult {
  /** Seconds from starting the VM until everything expected had appeared on its console. */
  seconds: number;
  /** true when cloud-init reported that it finished; undefined when not checked (boot-test-cloud-init = no). */
  cloudInitFinished: boolean | undefined;
  /** The last lines of the boot console (the console log itself is removed). */
  lastLines: string[];
  /** boot-test-command and boot-test-playbook as they ran in the booted image, when there are any. */
  checks?: BootCheck[];
}

/** How often the VM's state is asked for, and how often the console is read. */
const STATE_INTERVAL_MS = 3_000;
const CONSOLE_INTERVAL_MS = 1_000;
/** Progress messages at a calm rate. */
const PROGRESS_INTERVAL_MS = 30_000;

/**
 * The NoCloud seed's two files for one boot test; `tty`: the machine's serial
 * console (serialConsole). `config`: more cloud-config lines (SSH access);
 * with them the seed names no hostname, which cloud-init would write.
 */
export function noCloudSeed(
  token: string,
  tty: string,
  config: readonly string[] = [],
): { 'meta-data': string; 'user-data': string } {
  return {
    'meta-data': `instance-id: ${CLOUD_INIT_MARKER}-${token}\n${config.length ? '' : `local-hostname: ${CLOUD_INIT_MARKER}\n`}`,
    'user-data': [
      '#cloud-config',
      '# image-factory boot test: print a marker on the serial console once cloud-init has run.',
      `# runcmd writes it straight to ${tty}; final_message reaches the console through`,
      `# cloud-final's output (console=${tty} on the kernel command line).`,
      ...config,
      'runcmd:',
      // A line of its own: the console may hold an unfinished login prompt.
      `  - [sh, -c, 'printf "\\n%s\\n" "${CLOUD_INIT_MARKER} ${token}: cloud-init runcmd ran" > /dev/${tty} || true']`,
      `final_message: "${CLOUD_INIT_MARKER} ${token}: cloud-init finished after $UPTIME seconds"`,
      '',
    ].join('\n'),
  };
}

/**
 * The console text with a line break before each message that a kernel or
 * systemd printed in the middle of a line. A getty prompt (`debian login: `)
 * ends without a newline, and on a busy console the next message — a
 * timestamped kernel or journal line, cloud-init's output — lands right
 * after it: `$` in `expect` should still match after the prompt.
 */
export function splitMessages(text: string): string {
  return text.replace(/([^\n])(?=\[ *\d+\.\d+\] |\[ *(?:OK|FAILED|DEPEND|TIME) *\] )/g, '$1\n');
}

/** `expect` matches the console as it is, or with the interleaved messages split off. */
export function consoleMatches(expect: RegExp, text: string): boolean {
  return expect.test(text) || expect.test(splitMessages(text));
}

/** qemu's name of the image's format, from the file name; the build's first format otherwise. */
function formatOf(ctx: BuildContext, imagePath: string): string {
  const extension = /\.([a-z0-9]+)$/i.exec(imagePath)?.[1].toLowerCase();
  if (extension === 'img') return 'raw';
  const known = Object.keys(QEMU_FORMAT).find((format) => format === extension) as ImageFormat | undefined;
  return QEMU_FORMAT[known ?? ctx.spec.format];
}

function describeExpectations(expect: RegExp, cloudInit: boolean, token: string): string {
  return `the console to show /${expect.source}/${cloudInit ? ` and cloud-init's marker '${CLOUD_INIT_MARKER} ${token}: cloud-init finished'` : ''}`;
}

/** The files and names of one boot test, in a fresh folder next to the image. */
interface BootVm {
  folder: string;
  overlay: string;
  seedDir: string;
  seed: string;
  consoleLog: string;
  domain: string;
  token: string;
  /** The private folder of the SSH key, known_hosts and inventory, when the boot test runs checks over SSH. */
  keys: string;
  access?: GuestAccess;
}

function bootVm(ctx: BuildContext, image: string): BootVm {
  const folder = join(dirname(image), `.boot-test-${ctx.host.uniqueSuffix(3)}`);
  return {
    folder,
    overlay: join(folder, 'overlay.qcow2'),
    seedDir: join(folder, 'seed'),
    seed: join(folder, 'seed.iso'),
    consoleLog: join(folder, 'console.log'),
    domain: `${ctx.spec.stem}-boot-test-${ctx.host.uniqueSuffix(3)}`,
    token: ctx.host.uniqueSuffix(6),
    keys: join(folder, 'keys'),
  };
}

/** Whether the boot test runs commands or a playbook in the booted image (over SSH). */
function hasChecks(spec: BuildContext['spec']): boolean {
  return (spec.bootTest.commands?.length ?? 0) > 0 || spec.bootTest.playbook !== undefined;
}

/** The key pair and the forwarded port of a boot test with checks; the cloud-config that lets the key in. */
async function prepareAccess(ctx: BuildContext, vm: BootVm): Promise<string[]> {
  if (!hasChecks(ctx.spec)) return [];
  const { host } = ctx;
  await host.makeDir(vm.keys, 0o700);
  await host.chmod(vm.keys, 0o700);
  const { keyFile } = await makeKeyPair(host, vm.keys, `image-factory-boot-test-${vm.token}`);
  await host.writeFile(join(vm.keys, 'ansible.cfg'), '', 0o600);
  const port = host.live ? await freeLoopbackPort() : 2222;
  vm.access = { port, keyFile, knownHosts: join(vm.keys, 'known_hosts') };
  const publicKey = host.live ? (await host.readFile(`${keyFile}.pub`)).toString('utf8') : 'ssh-ed25519 KEY';
  return sshAccessConfig(publicKey);
}

/** The checks, once SSH answers with the host key the console showed. */
async function bootChecks(ctx: BuildContext, vm: BootVm, access: GuestAccess): Promise<BootCheck[]> {
  const { spec } = ctx;
  await connectGuest(ctx, {
    domain: vm.domain,
    token: vm.token,
    consoleLog: vm.consoleLog,
    access,
    timeoutMs: spec.bootTest.timeoutMs,
    what: 'boot test',
    limit: 'boot-timeout',
  });
  const files = { inventory: join(vm.keys, 'inventory.ini'), config: join(vm.keys, 'ansible.cfg') };
  return runBootChecks(ctx, access, files);
}

/** What the boot test waits for on the console, and when each part first appeared (exported for its tests). */
export class Expectation {
  readonly expect: RegExp;
  readonly cloudInit: boolean;
  private readonly cloudInitDone: RegExp;
  expectSeen?: number;
  cloudInitSeen?: number;

  constructor(
    ctx: BuildContext,
    readonly token: string,
    private readonly started = Date.now(),
  ) {
    this.expect = new RegExp(ctx.spec.bootTest.expect, 'm');
    this.cloudInit = ctx.spec.bootTest.cloudInit;
    this.cloudInitDone = cloudInitPattern(token);
  }

  describe(): string {
    return describeExpectations(this.expect, this.cloudInit, this.token);
  }

  /** Notes what the console shows now; tells the reporter when something first appears. */
  check(text: string, reporter: BuildContext['reporter']): void {
    const now = Date.now();
    if (this.expectSeen === undefined && consoleMatches(this.expect, text)) {
      this.expectSeen = now;
      reporter.info(
        `boot test: the console showed /${this.expect.source}/ after ${formatDuration(now - this.started)}`,
      );
    }
    if (this.cloudInit && this.cloudInitSeen === undefined && this.cloudInitDone.test(text)) {
      this.cloudInitSeen = now;
      reporter.info(`boot test: cloud-init finished after ${formatDuration(now - this.started)}`);
    }
  }

  met(): boolean {
    return this.expectSeen !== undefined && (!this.cloudInit || this.cloudInitSeen !== undefined);
  }

  /** Seconds from the start until everything expected had appeared. */
  seconds(): number {
    return (Math.max(this.expectSeen ?? this.started, this.cloudInitSeen ?? this.started) - this.started) / 1000;
  }
}

/**
 * Boot the finished image in a throw-away VM and wait until its serial
 * console shows `spec.bootTest.expect` (a login prompt by default) and, with
 * `spec.bootTest.cloudInit`, until cloud-init prints a marker that a NoCloud
 * seed asked for. The VM runs on a qcow2 overlay in a fresh folder next to
 * the image, so the image and its checksum stay untouched; VM, overlay, seed
 * and console log are removed on every path. Throws VmStepError when the
 * system does not come up within boot-timeout or the VM stops before.
 */
export async function bootTest(ctx: BuildContext, imagePath: string): Promise<BootTestResult> {
  const { spec, reporter, host, accelerator } = ctx;
  const image = resolve(imagePath);
  const vm = bootVm(ctx, image);
  // libvirt hands the disks of a VM to its qemu user, and does not hand a
  // read-only backing file back: the image's owner is restored at the end.
  const owner = await host.stat(image);
  // Undone newest first: the VM, then the ACLs, then the folder.
  const registrations: Registration[] = [];
  try {
    registrations.push(...(await prepareBootDisks(ctx, image, vm)));
    const command = await virtInstallCommand(host, spec, {
      name: vm.domain,
      accelerator,
      memoryMiB: spec.bootTest.ramMiB,
      disks: [
        { path: vm.overlay, format: 'qcow2' },
        ...(spec.bootTest.cloudInit ? [{ path: vm.seed, format: 'raw' as const, readonly: true }] : []),
      ],
      consoleLog: vm.consoleLog,
      boot: { kind: 'import' },
      sshForward: vm.access?.port,
    });
    const expectation = new Expectation(ctx, vm.token);
    reporter.info(
      `booting ${basename(image)} in a throw-away VM (${accelerator}, ${describeFirmware(spec.firmware)}); waiting at most ${formatDuration(spec.bootTest.timeoutMs)} for ${expectation.describe()}`,
    );
    registrations.push(ctx.cleanup.register(domainResource(host, spec, vm.domain)));
    try {
      await host.run(command, { onLine: (line) => reporter.output(line) });
    } catch (error) {
      if (error instanceof AbortedError) throw error;
      throw new VmStepError(
        `virt-install could not start the boot-test VM: ${error instanceof CommandError ? error.message : String(error)}`,
        [],
      );
    }
    // A recorded VM has no console to watch.
    const result = host.live
      ? await waitForSystem(ctx, vm, expectation)
      : { seconds: 0, cloudInitFinished: undefined, lastLines: [] };
    return vm.access ? { ...result, checks: await bootChecks(ctx, vm, vm.access) } : result;
  } finally {
    // Failure, timeout or interruption: stop the VM, remove overlay, seed and console log now.
    await releaseAll(ctx, registrations);
    await restoreOwner(ctx, image, owner.uid, owner.gid);
  }
}

/**
 * A VM's own folder (seed, console log, overlay), registered for undo once
 * made: one that already existed is not ours and is never removed. Mode 755
 * whatever the umask, for qemu's user passes through it.
 */
export async function makeVmFolder(ctx: BuildContext, folder: string): Promise<Registration> {
  const entry = ctx.cleanup.register({ kind: 'path', path: folder });
  try {
    await ctx.host.makeDir(folder, 0o755);
  } catch (error) {
    ctx.cleanup.forget(entry);
    throw error;
  }
  await ctx.host.chmod(folder, 0o755);
  return entry;
}

/** The boot test's folder, its overlay on the image, and the NoCloud seed. */
async function prepareBootDisks(ctx: BuildContext, image: string, vm: BootVm): Promise<Registration[]> {
  const { host } = ctx;
  const registrations: Registration[] = [await makeVmFolder(ctx, vm.folder)];
  registrations.push(...(await grantQemuSearch(ctx, vm.overlay, 'the boot test')));
  await host.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', formatOf(ctx, image), '-b', image, vm.overlay]);
  if (ctx.spec.bootTest.cloudInit) {
    await host.makeDir(vm.seedDir, 0o755);
    const access = await prepareAccess(ctx, vm);
    for (const [name, content] of Object.entries(noCloudSeed(vm.token, serialConsole(ctx.spec.arch), access)))
      await host.writeFile(join(vm.seedDir, name), content, 0o644);
    await makeSeedIso(host, vm.seedDir, vm.seed);
  }
  return registrations;
}

/** The NoCloud seed's ISO (volume `cidata`) from its folder. */
export async function makeSeedIso(host: BuildContext['host'], seedDir: string, seed: string): Promise<void> {
  // xorriso: a dependency of virtinst, so wherever virt-install is, this is too.
  await host.run([
    'xorriso',
    '-as',
    'mkisofs',
    '-quiet',
    '-volid',
    'cidata',
    '-joliet',
    '-rock',
    '-output',
    seed,
    seedDir,
  ]);
}

/** Watch the console until the expectation is met, boot-timeout passes, or the VM stops. */
async function waitForSystem(ctx: BuildContext, vm: BootVm, expectation: Expectation): Promise<BootTestResult> {
  const { reporter } = ctx;
  const screen = new ConsoleFollower(vm.consoleLog);
  const started = Date.now();
  let stoppedAt: number | undefined;
  try {
    stoppedAt = await watchBoot(ctx, vm, expectation, screen, started);
  } finally {
    // Whatever ends the watch: the console's file closed before the boot test's folder goes.
    await screen.stop();
  }
  const lastLines = screen.lastLines();
  if (!expectation.met())
    throw bootFailure(
      ctx,
      expectation,
      screen.screen.lines(),
      stoppedAt === undefined ? undefined : stoppedAt - started,
    );
  const seconds = expectation.seconds();
  const cloudInitAfter =
    expectation.cloudInitSeen === undefined ? undefined : (expectation.cloudInitSeen - started) / 1000;
  reporter.info(
    `boot test passed: the image came up in ${seconds.toFixed(1)} s` +
      (cloudInitAfter !== undefined ? ` (cloud-init finished after ${cloudInitAfter.toFixed(1)} s)` : ''),
  );
  return { seconds, cloudInitFinished: expectation.cloudInit ? true : undefined, lastLines };
}

/**
 * Read the console until the expectation is met, boot-timeout passes or the
 * VM stops; the time it stopped at when it stopped before the expectation was met.
 */
async function watchBoot(
  ctx: BuildContext,
  vm: BootVm,
  expectation: Expectation,
  screen: ConsoleFollower,
  started: number,
): Promise<number | undefined> {
  const { spec, reporter, host } = ctx;
  const deadline = started + spec.bootTest.timeoutMs;
  const progress = throttled(PROGRESS_INTERVAL_MS, (message) => reporter.progress('boot-test', message));
  let lastStateCheck = Date.now();
  for (;;) {
    await screen.poll();
    expectation.check(screen.text, reporter);
    if (expectation.met()) return undefined;
    const now = Date.now();
    if (now >= deadline) {
      reporter.warning(
        `the system did not come up within ${formatDuration(spec.bootTest.timeoutMs)} (boot-timeout): stopping the VM`,
      );
      return undefined;
    }
    if (now - lastStateCheck >= STATE_INTERVAL_MS) {
      lastStateCheck = now;
      if (!(await domainRunning(host, vm.domain))) {
        // What it printed last, virtlogd may write a moment later.
        await sleep(500);
        await screen.poll();
        expectation.check(screen.text, reporter);
        return expectation.met() ? undefined : Date.now();
      }
    }
    const latest = screen.latest();
    progress(`VM up for ${formatDuration(now - started)}${latest ? `; console: ${latest.slice(0, 160)}` : ''}`);
    try {
      await sleep(CONSOLE_INTERVAL_MS, undefined, { signal: ctx.signal });
    } catch {
      throw new AbortedError('interrupted during the boot test');
    }
  }
}

/** Why the system did not come up, in words, with the console's last screen (exported for its tests). */
export function bootFailure(
  ctx: BuildContext,
  expectation: Expectation,
  lastScreen: string[],
  stoppedAfterMs: number | undefined,
): VmStepError {
  const { expect, cloudInit } = expectation;
  const limit = formatDuration(ctx.spec.bootTest.timeoutMs);
  const tty = serialConsole(ctx.spec.arch);
  const how =
    stoppedAfterMs !== undefined
      ? `the VM stopped after ${formatDuration(stoppedAfterMs)}, before the system came up`
      : `the boot did not get there within ${limit} (boot-timeout), so the VM was stopped`;
  const missing =
    expectation.expectSeen !== undefined
      ? `The console showed /${expect.source}/, but cloud-init never printed its marker (is cloud-init installed, with the NoCloud datasource, and does its output reach ${tty}?).`
      : `The console never showed /${expect.source}/${cloudInit && expectation.cloudInitSeen !== undefined ? ' (cloud-init did finish)' : ''}.`;
  const empty =
    lastScreen.length === 0
      ? ` The console stayed empty: no boot loader, or a kernel that does not print to the serial console (console=${tty})?`
      : '';
  return new VmStepError(
    `the boot test expected ${expectation.describe()}, but ${how}. ${missing}${empty}`,
    lastScreen,
  );
}

/** Undo a VM's resources newest first; what fails stays registered for the build's unwind. */
export async function releaseAll(ctx: BuildContext, registrations: Registration[], what = 'boot test'): Promise<void> {
  while (registrations.length) {
    try {
      await ctx.cleanup.release(registrations[registrations.length - 1]);
    } catch (error) {
      ctx.reporter.warning(`${what}: ${(error as Error).message}`);
      return;
    }
    registrations.pop();
  }
}

async function restoreOwner(ctx: BuildContext, path: string, uid: number, gid: number): Promise<void> {
  try {
    const now = await ctx.host.stat(path);
    if (now.uid === uid && now.gid === gid) return;
    await ctx.host.chown(path, uid, gid);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    ctx.reporter.warning(
      `boot test: could not give ${path} back to uid ${uid}, gid ${gid}: ${(error as Error).message}`,
    );
  }
}
