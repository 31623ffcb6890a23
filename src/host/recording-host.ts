import type { Reporter } from '../common/reporter.js';
import { CommandError, formatCommand } from './command-error.js';
import { runCommand, type RunResult } from './exec.js';
import { currentUid, type FileInfo, type GuestfishShell, type Host, type HostRunOptions } from './host.js';
import { nvramPath } from './libvirt.js';

/** One thing a build asked of the host, in order. */
export type HostCall =
  | { kind: 'run'; argv: string[]; root: boolean }
  | {
      kind: 'fs';
      operation:
        | 'makeTempDir'
        | 'makeDir'
        | 'makeDirs'
        | 'chmod'
        | 'chown'
        | 'writeFile'
        | 'copyFile'
        | 'setTimes'
        | 'replace'
        | 'remove'
        | 'publish';
      paths: string[];
    };

/** A planned answer to the commands it matches (matched without the `sudo -n` prefix). */
export interface PlannedAnswer {
  match: RegExp | ((argv: readonly string[]) => boolean);
  /** What the command returns; a non-zero exitCode is thrown as a CommandError unless allowFailure. */
  result?: Partial<RunResult>;
  /** What the command returns, computed from its argv (a stand-in appliance answering from a folder). */
  respond?: (argv: readonly string[]) => Partial<RunResult>;
  /** Run it for real (only honoured for readOnly probes): the dry run asks virt-install its version. */
  runForReal?: boolean;
}

export interface RecordingPlan {
  answers?: PlannedAnswer[];
  /** What stat says of a path; the calls so far tell what has happened to it. */
  stat?: (path: string, calls: readonly HostCall[]) => FileInfo;
  /** A real folder makeTempDir returns for a prefix (a test's stand-in for the guest's mounted tree). */
  tempDir?: (prefix: string) => string | undefined;
  /** What readRange returns (the scrub's check of the disk's free space); zeros when unset. */
  readRange?: (path: string, offset: number, length: number) => Buffer;
  /** What readFile returns for a path (a screenshot virsh "wrote"); ENOENT when undefined. */
  readFile?: (path: string) => Buffer | undefined;
  /**
   * An installer's virt-install (--wait) returns only once its domain is
   * destroyed or powerOff() is called: an install that takes its time, for
   * tests of what watches it. Otherwise it returns at once.
   */
  installsRunUntilStopped?: boolean;
}

interface ModelledDomain {
  transient: boolean;
  running: boolean;
  /** Resolves when the domain stops. */
  stopped: Promise<void>;
  stop: () => void;
}

const OK: RunResult = { exitCode: 0, signal: null, stdout: '', lastLines: [] };

/**
 * A Host that runs nothing and creates nothing: it logs every command (to the
 * reporter, as a real run does) and every file operation (in `calls`), and
 * answers from a plan. libguestfs appliances, domains and temporary folders
 * are modelled, so that the undo of a step finds what the step "created" and a
 * test can ask what was left behind.
 */
export class RecordingHost implements Host {
  readonly live = false;
  readonly isRoot: boolean;
  readonly calls: HostCall[] = [];
  /** What was written with writeFile, by path (the last write wins). */
  readonly written = new Map<string, string | Uint8Array>();
  /** Running appliances: guestfish pid → disk (once its drive was added). */
  private readonly appliances = new Map<string, string>();
  private nextPid = 4000;
  private readonly domains = new Map<string, ModelledDomain>();
  private readonly tempDirs = new Set<string>();
  /** The NVRAM files libvirt made for UEFI domains. */
  private readonly nvram = new Set<string>();

  constructor(
    private readonly reporter: Reporter,
    private readonly plan: RecordingPlan = {},
    uid = currentUid(),
  ) {
    this.isRoot = uid === 0;
  }

  uninterruptible(): Host {
    return this;
  }

  /** The command lines run so far, formatted as a shell would take them back. */
  commands(): string[] {
    return this.calls.flatMap((call) => (call.kind === 'run' ? [formatCommand(call.argv)] : []));
  }

  /** The paths of each file operation of one kind, in order (for copyFile and publish: from and to). */
  fileOperations(operation: Extract<HostCall, { kind: 'fs' }>['operation']): string[][] {
    return this.calls.flatMap((call) => (call.kind === 'fs' && call.operation === operation ? [call.paths] : []));
  }

  /** What a real build would still have attached, mounted, defined or on disk. */
  leftovers(): string[] {
    return [
      ...[...this.appliances.keys()].map((pid) => `appliance ${pid}`),
      ...[...this.domains.keys()].map((name) => `domain ${name}`),
      ...[...this.tempDirs].map((path) => `folder ${path}`),
      ...[...this.nvram].map((path) => `NVRAM ${path}`),
    ];
  }

  async run(argv: readonly string[], options: HostRunOptions = {}): Promise<RunResult> {
    const command = options.root && !this.isRoot ? ['sudo', '-n', ...argv] : [...argv];
    this.calls.push({ kind: 'run', argv: command, root: options.root ?? false });
    if (!options.quiet) this.reporter.command(command);
    const answer = this.plan.answers?.find(({ match }) =>
      typeof match === 'function' ? match(argv) : match.test(formatCommand(argv)),
    );
    if (answer?.runForReal && options.readOnly) return runCommand(argv, { ...options, allowFailure: true });
    const modelled = this.model(argv);
    const result = { ...OK, ...(answer?.respond?.(argv) ?? answer?.result ?? modelled) };
    if (this.plan.installsRunUntilStopped && argv[0] === 'virt-install' && argv.includes('--wait')) {
      await this.domains.get(argv[argv.indexOf('--name') + 1])?.stopped;
    }
    if (result.exitCode !== 0 && !options.allowFailure) {
      throw new CommandError(command, result.exitCode, result.signal, result.lastLines);
    }
    return result;
  }

  /**
   * A modelled guestfish shell: its start is recorded as the command it is,
   * each of its commands as the `guestfish --remote=PID -- -COMMAND ARGS` that
   * does the same, answered by the plan (the stand-in appliance) or the model.
   */
  async guestfish(env: readonly string[]): Promise<GuestfishShell> {
    const argv = ['env', ...env, 'guestfish'];
    this.calls.push({ kind: 'run', argv, root: false });
    this.reporter.command(argv);
    const pid = String(this.nextPid++);
    this.appliances.set(pid, '');
    const remote = (command: string, args: readonly string[]) =>
      this.run(['guestfish', `--remote=${pid}`, '--', command, ...args], { quiet: true, allowFailure: true });
    let calls = 0;
    return {
      pid,
      get calls() {
        return calls;
      },
      async call(command, args) {
        calls++;
        const result = await remote(`-${command}`, args);
        const errors = result.lastLines.filter((line) => /^libguestfs: error:|^guestfish: /.test(line));
        if (result.exitCode !== 0 && !errors.length) errors.push(`guestfish: exit code ${result.exitCode}`);
        return { stdout: result.stdout, errors };
      },
      async exit() {
        await remote('exit', []);
      },
    };
  }

  async readRange(path: string, offset: number, length: number): Promise<Buffer> {
    return this.plan.readRange?.(path, offset, length) ?? Buffer.alloc(length);
  }

  uniqueSuffix(bytes: number): string {
    return 'X'.repeat(bytes * 2);
  }

  async makeTempDir(prefix: string): Promise<string> {
    const path = this.plan.tempDir?.(prefix) ?? `${prefix}XXXXXX`;
    this.record('makeTempDir', path);
    this.tempDirs.add(path);
    return path;
  }

  async makeDir(path: string): Promise<void> {
    this.record('makeDir', path);
    this.tempDirs.add(path);
  }

  async makeDirs(path: string): Promise<void> {
    this.record('makeDirs', path);
  }

  async chmod(path: string): Promise<void> {
    this.record('chmod', path);
  }

  async chown(path: string): Promise<void> {
    this.record('chown', path);
  }

  async writeFile(path: string, content: string | Uint8Array): Promise<void> {
    this.record('writeFile', path);
    this.written.set(path, content);
  }

  async readFile(path: string): Promise<Buffer> {
    const content = this.plan.readFile?.(path);
    if (content === undefined) throw Object.assign(new Error(`ENOENT: no such file: ${path}`), { code: 'ENOENT' });
    return content;
  }

  async copyFile(from: string, to: string): Promise<void> {
    this.record('copyFile', from, to);
  }

  async setTimes(path: string): Promise<void> {
    this.record('setTimes', path);
  }

  async replace(from: string, to: string): Promise<void> {
    this.record('replace', from, to);
  }

  async remove(path: string): Promise<void> {
    this.record('remove', path);
    this.nvram.delete(path);
    for (const dir of this.tempDirs) if (dir === path || dir.startsWith(`${path}/`)) this.tempDirs.delete(dir);
  }

  async publish(from: string, to: string): Promise<void> {
    this.record('publish', from, to);
  }

  async stat(path: string): Promise<FileInfo> {
    return this.plan.stat?.(path, this.calls) ?? { size: 0, blocks: 0, uid: 0, gid: 0 };
  }

  /** The modelled VM powers itself off, as an installer does when it is done. */
  powerOff(domain: string): void {
    const modelled = this.domains.get(domain);
    if (!modelled) return;
    modelled.running = false;
    modelled.stop();
  }

  private record(operation: Extract<HostCall, { kind: 'fs' }>['operation'], ...paths: string[]): void {
    this.calls.push({ kind: 'fs', operation, paths });
  }

  /** What the modelled machine answers: appliances and libvirt domains come and go. */
  private model(argv: readonly string[]): Partial<RunResult> {
    const [program, ...args] = argv;
    if (argv.includes('guestfish')) return this.modelGuestfish(argv.slice(argv.indexOf('guestfish') + 1));
    if (program === 'ps') {
      const rows = [...this.appliances.keys()].map((pid) => `${pid} 1 guestfish`);
      return { stdout: rows.map((row) => `${row}\n`).join('') };
    }
    // An appliance's shell ends on a signal (the undo of an appliance a build left).
    if (program === 'kill') for (const pid of args.slice(1)) this.appliances.delete(pid);
    if (program === 'virt-install' && args.includes('--name')) {
      const transient = args.includes('--transient');
      let stop = (): void => undefined;
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      const running = transient || this.plan.installsRunUntilStopped === true;
      const name = args[args.indexOf('--name') + 1];
      this.domains.set(name, { transient, running, stopped, stop });
      const boot = args.indexOf('--boot');
      if (boot >= 0 && args[boot + 1].split(',').includes('uefi')) {
        this.nvram.add(nvramPath(args[args.indexOf('--connect') + 1], name));
      }
    }
    if (program === 'virsh') return this.virsh(args);
    return {};
  }

  private modelGuestfish(args: readonly string[]): Partial<RunResult> {
    const pid = /^--remote=(\d+)$/.exec(args[0] ?? '')?.[1];
    if (!pid || !this.appliances.has(pid)) {
      return { exitCode: 1, lastLines: ['guestfish: remote: looks like the server is not running'] };
    }
    const command = (args[2] ?? '').replace(/^-/, '');
    if (command === 'add-drive') this.appliances.set(pid, args[3]);
    if (command === 'exit') this.appliances.delete(pid);
    return {};
  }

  private virsh(args: readonly string[]): Partial<RunResult> {
    const [, , verb, name] = args;
    const domain = this.domains.get(name);
    if (!domain)
      return verb === 'domstate' ? { exitCode: 1, lastLines: [`error: failed to get domain '${name}'`] } : {};
    if (verb === 'domstate') return { stdout: domain.running ? 'running\n' : 'shut off\n' };
    if (verb === 'destroy') {
      if (domain.transient) this.domains.delete(name);
      else domain.running = false;
      domain.stop();
    }
    if (verb === 'undefine') {
      this.domains.delete(name);
      if (args.includes('--nvram')) this.nvram.delete(nvramPath(args[1], name));
    }
    return {};
  }
}
