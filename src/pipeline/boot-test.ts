import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../config/units.js';
import { CommandError } from '../host/command-error.js';
import { AbortedError } from '../host/exec.js';
import { libvirtUri, osinfoFlag } from '../host/libvirt.js';
import { AppendedFile } from './console-tail.js';
import type { BuildContext } from './context.js';
import { escapeOptionValue, grantQemuSearch } from './install.js';
import { throttled } from './reporter.js';
import type { Registration } from './resources.js';

/** What the boot test saw. */
export interface BootTestResult {
  /** Seconds from starting the VM until everything expected had appeared on its console. */
  seconds: number;
  /** true when cloud-init reported that it finished; undefined when not checked (boot-test-cloud-init = no). */
  cloudInitFinished: boolean | undefined;
  /** The last lines of the boot console (the console log itself is removed). */
  lastLines: string[];
}

/** The image did not come up: the message says what was expected and quotes the console. */
export class BootTestError extends Error {
  constructor(
    message: string,
    readonly consoleLines: string[],
  ) {
    super(consoleLines.length ? `${message}\nLast console lines:\n${consoleLines.map((l) => `  | ${l}`).join('\n')}` : message);
    this.name = 'BootTestError';
  }
}

/** How often the VM's state is asked for, and how often the console is read. */
const STATE_INTERVAL_MS = 3_000;
const CONSOLE_INTERVAL_MS = 1_000;
/** Progress messages at a calm rate. */
const PROGRESS_INTERVAL_MS = 30_000;
const KEEP_LINES = 20;
/** The console text kept for matching (a boot prints far less). */
const MAX_CONSOLE_CHARS = 4 << 20;

/** The printed marker: `image-factory-boot-test <token>: cloud-init finished …`. */
export const CLOUD_INIT_MARKER = 'image-factory-boot-test';

/** The NoCloud seed's two files for one boot test. */
export function noCloudSeed(token: string): { 'meta-data': string; 'user-data': string } {
  return {
    'meta-data': `instance-id: ${CLOUD_INIT_MARKER}-${token}\nlocal-hostname: ${CLOUD_INIT_MARKER}\n`,
    'user-data': [
      '#cloud-config',
      '# image-factory boot test: print a marker on the serial console once cloud-init has run.',
      '# runcmd writes it straight to ttyS0; final_message reaches the console through',
      "# cloud-final's output (console=ttyS0 on the kernel command line).",
      'runcmd:',
      // A line of its own: the console may hold an unfinished login prompt.
      `  - [sh, -c, 'printf "\\n%s\\n" "${CLOUD_INIT_MARKER} ${token}: cloud-init runcmd ran" > /dev/ttyS0 || true']`,
      `final_message: "${CLOUD_INIT_MARKER} ${token}: cloud-init finished after $UPTIME seconds"`,
      '',
    ].join('\n'),
  };
}

/** The console lines that say cloud-init got to its final stage. */
export function cloudInitPattern(token: string): RegExp {
  return new RegExp(`${CLOUD_INIT_MARKER} ${token}: cloud-init (?:finished|runcmd ran)`);
}

/** Terminal escape sequences, carriage returns and other control characters out; lines kept. */
export function cleanConsoleText(raw: string): string {
  return (
    raw
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]/g, '')
      .replace(/\r\n/g, '\n')
      .replace(/\r/g, '\n')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
  );
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

/**
 * Follows the console log that virtlogd writes, keeping the whole (cleaned)
 * text, the unfinished last line included: a login prompt ends without a
 * newline, and `expect` is matched against it.
 */
class ConsoleText {
  private readonly file: AppendedFile;
  private raw = '';
  private cleaned = '';

  constructor(path: string) {
    this.file = new AppendedFile(path);
  }

  async poll(): Promise<void> {
    const added = await this.file.readNew();
    if (added.length === 0) return;
    this.raw += added.toString('latin1');
    if (this.raw.length > MAX_CONSOLE_CHARS) this.raw = this.raw.slice(-MAX_CONSOLE_CHARS);
    this.cleaned = cleanConsoleText(Buffer.from(this.raw, 'latin1').toString('utf8'));
  }

  get text(): string {
    return this.cleaned;
  }

  lastLines(count = KEEP_LINES): string[] {
    return this.cleaned
      .split('\n')
      .map((line) => line.trimEnd())
      .filter((line) => line.trim() !== '')
      .slice(-count);
  }

  latest(): string | undefined {
    return this.lastLines(1)[0];
  }
}

/** `raw` or `qcow2`, from the file name; the build's format otherwise. */
function formatOf(ctx: BuildContext, imagePath: string): 'raw' | 'qcow2' {
  if (/\.qcow2$/i.test(imagePath)) return 'qcow2';
  if (/\.(raw|img)$/i.test(imagePath)) return 'raw';
  return ctx.spec.format;
}

function describeExpectations(expect: RegExp, cloudInit: boolean, token: string): string {
  return `the console to show /${expect.source}/${cloudInit ? ` and cloud-init's marker '${CLOUD_INIT_MARKER} ${token}: cloud-init finished'` : ''}`;
}

/**
 * Boot the finished image in a throw-away VM and wait until its serial
 * console shows `spec.bootTest.expect` (a login prompt by default) and, with
 * `spec.bootTest.cloudInit`, until cloud-init prints a marker that a NoCloud
 * seed asked for. The VM runs on a qcow2 overlay in a fresh folder next to
 * the image, so the image and its checksum stay untouched; VM, overlay, seed
 * and console log are removed on every path. Throws BootTestError when the
 * system does not come up within boot-timeout or the VM stops before.
 */
export async function bootTest(ctx: BuildContext, imagePath: string, accelerator: 'kvm' | 'tcg'): Promise<BootTestResult> {
  const { spec, reporter, cleanup, host } = ctx;
  const image = resolve(imagePath);
  const format = formatOf(ctx, image);
  const token = ctx.dryRun ? 'XXXXXXXXXXXX' : randomBytes(6).toString('hex');
  const cloudInit = spec.bootTest.cloudInit;
  const expect = new RegExp(spec.bootTest.expect, 'm');
  const cloudInitDone = cloudInitPattern(token);
  const uri = libvirtUri(host);

  const folder = join(dirname(image), `.boot-test-${ctx.dryRun ? 'XXXXXX' : randomBytes(3).toString('hex')}`);
  const overlay = join(folder, 'overlay.qcow2');
  const seedDir = join(folder, 'seed');
  const seed = join(folder, 'seed.iso');
  const consoleLog = join(folder, 'console.log');
  const domain = `${spec.stem}-boot-test-${ctx.dryRun ? 'XXXXXX' : randomBytes(3).toString('hex')}`;

  const overlayCommand = ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', format, '-b', image, overlay];
  // xorriso: a dependency of virtinst, so wherever virt-install is, this is too.
  const seedCommand = ['xorriso', '-as', 'mkisofs', '-quiet', '-volid', 'cidata', '-joliet', '-rock', '-output', seed, seedDir];
  const virtInstall = [
    'virt-install',
    '--connect',
    uri,
    '--virt-type',
    accelerator === 'kvm' ? 'kvm' : 'qemu',
    await osinfoFlag(host),
    spec.osinfo,
    '--import',
    // Gone from libvirt as soon as it stops: nothing to undefine, nothing to forget.
    '--transient',
    '--name',
    domain,
    '--vcpus',
    String(spec.cores),
    '--memory',
    String(spec.bootTest.ramMiB),
    '--disk',
    `path=${escapeOptionValue(overlay)},bus=virtio,format=qcow2`,
    ...(cloudInit ? ['--disk', `path=${escapeOptionValue(seed)},bus=virtio,format=raw,readonly=on`] : []),
    '--network',
    'user,model=virtio',
    '--graphics',
    'none',
    '--console',
    `pty,target_type=serial,log.file=${escapeOptionValue(consoleLog)}`,
    '--noautoconsole',
  ];

  const expectations = describeExpectations(expect, cloudInit, token);
  if (ctx.dryRun) {
    reporter.info(`would boot ${basename(image)} in a throw-away VM and wait at most ${formatDuration(spec.bootTest.timeoutMs)} for ${expectations}`);
    await host.run(overlayCommand);
    if (cloudInit) await host.run(seedCommand);
    await host.run(virtInstall);
    await host.run(['virsh', '-c', uri, 'destroy', domain]);
    return { seconds: 0, cloudInitFinished: undefined, lastLines: [] };
  }

  // Undone newest first: the VM, then the ACLs, then the folder.
  const registrations: Registration[] = [];
  const releaseAll = async (): Promise<void> => {
    while (registrations.length) {
      const entry = registrations[registrations.length - 1];
      try {
        await cleanup.release(entry);
      } catch (error) {
        // Still registered: the build's unwind tries again and reports it.
        reporter.warning(`boot test: ${(error as Error).message}`);
        return;
      }
      registrations.pop();
    }
  };

  // libvirt hands the disks of a VM to its qemu user, and does not hand a
  // read-only backing file back: the image's owner is restored at the end.
  const owner = await stat(image);
  const screen = new ConsoleText(consoleLog);
  try {
    const folderEntry = cleanup.register({ kind: 'path', path: folder });
    try {
      await mkdir(folder, { mode: 0o755 });
    } catch (error) {
      // Not ours (a name clash): do not remove it.
      cleanup.forget(folderEntry);
      throw error;
    }
    registrations.push(folderEntry);
    // mkdir's mode is filtered by the umask: qemu's user must pass through.
    await chmod(folder, 0o755);
    registrations.push(...(await grantQemuSearch(ctx, overlay, 'the boot test')));

    await host.run(overlayCommand);
    if (cloudInit) {
      await mkdir(seedDir);
      for (const [name, content] of Object.entries(noCloudSeed(token))) await writeFile(join(seedDir, name), content, { mode: 0o644 });
      await host.run(seedCommand);
    }

    reporter.info(`booting ${basename(image)} in a throw-away VM (${accelerator}); waiting at most ${formatDuration(spec.bootTest.timeoutMs)} for ${expectations}`);
    const started = Date.now();
    const deadline = started + spec.bootTest.timeoutMs;
    registrations.push(cleanup.register({ kind: 'domain', uri, name: domain }));
    try {
      await host.run(virtInstall, { onLine: (line) => reporter.output(line) });
    } catch (error) {
      if (error instanceof AbortedError) throw error;
      const detail = error instanceof CommandError ? error.message : String(error);
      throw new BootTestError(`virt-install could not start the boot-test VM: ${detail}`, []);
    }

    const progress = throttled(PROGRESS_INTERVAL_MS, (message) => reporter.progress('boot-test', message));
    let expectSeen: number | undefined;
    let cloudInitSeen: number | undefined;
    let stoppedAt: number | undefined;
    let lastStateCheck = Date.now();
    const check = (): void => {
      const now = Date.now();
      if (expectSeen === undefined && consoleMatches(expect, screen.text)) {
        expectSeen = now;
        reporter.info(`boot test: the console showed /${expect.source}/ after ${formatDuration(now - started)}`);
      }
      if (cloudInit && cloudInitSeen === undefined && cloudInitDone.test(screen.text)) {
        cloudInitSeen = now;
        reporter.info(`boot test: cloud-init finished after ${formatDuration(now - started)}`);
      }
    };
    const done = (): boolean => expectSeen !== undefined && (!cloudInit || cloudInitSeen !== undefined);

    for (;;) {
      await screen.poll();
      check();
      if (done()) break;
      const now = Date.now();
      if (now >= deadline) {
        reporter.warning(`the system did not come up within ${formatDuration(spec.bootTest.timeoutMs)} (boot-timeout): stopping the VM`);
        break;
      }
      if (now - lastStateCheck >= STATE_INTERVAL_MS) {
        lastStateCheck = now;
        if (!(await domainRunning(ctx, uri, domain))) {
          // What it printed last, virtlogd may write a moment later.
          await sleep(500);
          await screen.poll();
          check();
          if (!done()) stoppedAt = Date.now();
          break;
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

    const lastLines = screen.lastLines();
    if (!done()) {
      const how =
        stoppedAt !== undefined
          ? `the VM stopped after ${formatDuration(stoppedAt - started)}, before the system came up`
          : `the boot did not get there within ${formatDuration(spec.bootTest.timeoutMs)} (boot-timeout), so the VM was stopped`;
      const missing =
        expectSeen !== undefined
          ? `The console showed /${expect.source}/ after ${formatDuration(expectSeen - started)}, but cloud-init never printed its marker (is cloud-init installed, with the NoCloud datasource, and does its output reach ttyS0?).`
          : `The console never showed /${expect.source}/${cloudInit && cloudInitSeen !== undefined ? ' (cloud-init did finish)' : ''}.`;
      const empty = lastLines.length === 0 ? ' The console stayed empty: no boot loader, or a kernel that does not print to the serial console (console=ttyS0)?' : '';
      throw new BootTestError(`the boot test expected ${expectations}, but ${how}. ${missing}${empty}`, lastLines);
    }

    const seconds = (Math.max(expectSeen ?? started, cloudInitSeen ?? started) - started) / 1000;
    reporter.info(
      `boot test passed: the image came up in ${seconds.toFixed(1)} s` +
        (cloudInit && cloudInitSeen !== undefined ? ` (cloud-init finished after ${((cloudInitSeen - started) / 1000).toFixed(1)} s)` : ''),
    );
    await releaseAll();
    return { seconds, cloudInitFinished: cloudInit ? true : undefined, lastLines };
  } finally {
    // Failure, timeout or interruption: stop the VM, remove overlay, seed and console log now.
    await releaseAll();
    await restoreOwner(ctx, image, owner.uid, owner.gid);
  }
}

async function restoreOwner(ctx: BuildContext, path: string, uid: number, gid: number): Promise<void> {
  try {
    const now = await stat(path);
    if (now.uid === uid && now.gid === gid) return;
    await chown(path, uid, gid);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    ctx.reporter.warning(`boot test: could not give ${path} back to uid ${uid}, gid ${gid}: ${(error as Error).message}`);
  }
}

/** Whether the domain still runs: a transient domain that stopped is gone. */
async function domainRunning(ctx: BuildContext, uri: string, domain: string): Promise<boolean> {
  const state = await ctx.host.run(['virsh', '-c', uri, 'domstate', domain], { allowFailure: true, quiet: true, captureStdout: true });
  if (state.exitCode !== 0) {
    // Gone; any other failure (libvirtd busy) is asked again at the next check.
    return !/failed to get domain|domain not found|no domain with matching name/i.test(state.lastLines.join('\n'));
  }
  return !/shut off|crashed|shutdown/.test(state.stdout);
}
