import type { VmAccelerator } from '../host/accelerator.js';
import type { GuestfishShell, Host } from '../host/host.js';
import type { BuildContext } from '../context/build-context.js';
import type { Registration } from '../context/undo-list.js';

/**
 * The libguestfs appliance that reads and scrubs the installed disk: a small
 * VM of its own (guestfish's shell, one process for the scrub), so that
 * the guest's file systems never meet the host's kernel — no loop device, no
 * host mount, no host device-mapper for LVM, and a guest volume group named
 * like one of the host's cannot clash with it.
 */

export class ApplianceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApplianceError';
  }
}

/** One remote command's outcome. */
export interface Reply {
  ok: boolean;
  stdout: string;
  /** libguestfs's error, when the command failed. */
  error: string;
}

/** How the appliance is started: libvirt's backend is not needed, TCG where the build runs without KVM. */
export function applianceEnvironment(accelerator: VmAccelerator): string[] {
  return ['LIBGUESTFS_BACKEND=direct', ...(accelerator === 'tcg' ? ['LIBGUESTFS_BACKEND_SETTINGS=force_tcg'] : [])];
}

/** The device type libguestfs gives the disk (virtio-scsi): its properties are set with `-global`. */
const DISK_DEVICE = 'scsi-hd';

export class Appliance {
  private constructor(
    private readonly ctx: BuildContext,
    private readonly shell: GuestfishShell,
    private entry: Registration,
  ) {}

  get pid(): string {
    return this.shell.pid;
  }

  /** Commands run in the appliance so far (each a round trip to it, but for a few of guestfish's own). */
  get roundTrips(): number {
    return this.shell.calls;
  }

  /**
   * Start the appliance, under the build's accelerator, with the disk attached
   * read-write and discards passed to its file (fstrim inside punches holes
   * into a raw one; a qcow2 overlay's discarded clusters read as zeros). The
   * disk reports a discard granularity of 512 bytes (4 KiB by default), so
   * that fstrim discards free extents of any size: a single free 1 KiB block
   * of a small ext4 or a 512-byte FAT cluster too (a discard smaller than the
   * host file system's block zeroes that part of it). The undo is registered
   * before guestfish starts, and again with its pid once known.
   */
  static async launch(ctx: BuildContext, disk: string, format: 'raw' | 'qcow2' = 'raw'): Promise<Appliance> {
    const { host, cleanup } = ctx;
    const first = cleanup.register({ kind: 'appliance', disk });
    const shell = await host.guestfish(applianceEnvironment(ctx.accelerator));
    const entry = cleanup.register({ kind: 'appliance', disk, pid: shell.pid });
    cleanup.forget(first);
    const appliance = new Appliance(ctx, shell, entry);
    await appliance.must('config', '-global', `${DISK_DEVICE}.discard_granularity=512`);
    await appliance.must('add-drive', disk, `format:${format}`, 'discard:besteffort');
    ctx.reporter.info('starting the libguestfs appliance (a VM of its own: the guest never meets the host kernel)');
    await appliance.must('run');
    return appliance;
  }

  /**
   * Run one command in the appliance. `mayFail`: its failure is in the reply
   * rather than thrown. Commands are logged unless `quiet` (probes whose
   * output is parsed).
   */
  async call(
    command: string,
    args: readonly string[] = [],
    options: { mayFail?: boolean; quiet?: boolean } = {},
  ): Promise<Reply> {
    if (!options.quiet) this.ctx.reporter.command(['guestfish', command, ...args]);
    const reply = await this.shell.call(command, args);
    const ok = reply.errors.length === 0;
    if (!ok && !options.mayFail) {
      throw new ApplianceError(
        `${command} ${args.join(' ')} failed in the appliance: ${reply.errors.join(' ')}`.replace(/ +/g, ' '),
      );
    }
    return { ok, stdout: reply.stdout, error: reply.errors.join(' ').replace(/^libguestfs: error: /, '') };
  }

  /** A command that must succeed; its output. */
  async must(command: string, ...args: string[]): Promise<string> {
    return (await this.call(command, args)).stdout;
  }

  /** A probe that may fail (quiet: it is parsed, not shown); undefined when it failed. */
  async probe(command: string, ...args: string[]): Promise<string | undefined> {
    const reply = await this.call(command, args, { mayFail: true, quiet: true });
    return reply.ok ? reply.stdout : undefined;
  }

  /**
   * A path probe: its output, or undefined when the path is missing, a
   * component of it is not a folder, or it is a folder where a file was
   * asked for (libguestfs's errno texts). Any other failure is an error: a probe
   * that failed for another reason must not read as "nothing there" (a log
   * would be left in the image without a word).
   */
  async probePath(command: string, ...args: string[]): Promise<string | undefined> {
    const reply = await this.call(command, args, { mayFail: true, quiet: true });
    if (reply.ok) return reply.stdout;
    if (/No such file or directory|Not a directory|is a directory/i.test(reply.error)) return undefined;
    throw new ApplianceError(`${command} ${args.join(' ')} failed in the appliance: ${reply.error || 'no error text'}`);
  }

  /**
   * Mount one file system alone at / (after `umount-all`, / is free), a Btrfs from its top level
   * (`subvolid=5`), so that every subvolume is under it whatever the default subvolume is. A read-only
   * mount may fail (its reply says so); a read-write one must succeed.
   */
  async mountWhole(fs: { device: string; type: string }, access: 'ro' | 'rw'): Promise<Reply> {
    const btrfs = fs.type === 'btrfs';
    if (access === 'ro') {
      return btrfs
        ? this.call('mount-options', ['ro,subvolid=5', fs.device, '/'], { mayFail: true })
        : this.call('mount-ro', [fs.device, '/'], { mayFail: true });
    }
    return btrfs ? this.call('mount-options', ['subvolid=5', fs.device, '/']) : this.call('mount', [fs.device, '/']);
  }

  /** The paths, from the top level, of the subvolumes of the Btrfs mounted whole at / (`mountWhole`). */
  async btrfsSubvolumes(): Promise<string[]> {
    const list = (await this.probe('btrfs-subvolume-list', '/')) ?? '';
    return [...list.matchAll(/btrfssubvolume_path: (.*)/g)].map((match) => match[1].trim());
  }

  /** Shut the appliance down and check that it is gone. */
  async close(): Promise<void> {
    await this.shell.exit(60_000);
    await this.ctx.cleanup.release(this.entry);
  }
}

/** The processes of an appliance: guestfish's pid, its descendants, and any qemu naming the disk. */
async function applianceProcesses(host: Host, disk: string, pid?: string): Promise<string[]> {
  const ps = await host.run(['ps', '-eo', 'pid=,ppid=,args='], {
    captureStdout: true,
    quiet: true,
    readOnly: true,
    allowFailure: true,
  });
  const rows = ps.stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map(([, p, ppid, args]) => ({ pid: p, ppid, args }));
  const found = new Set<string>();
  if (pid && rows.some((row) => row.pid === pid)) found.add(pid);
  for (let grew = true; grew;) {
    grew = false;
    for (const row of rows)
      if (found.has(row.ppid) && !found.has(row.pid)) {
        found.add(row.pid);
        grew = true;
      }
  }
  for (const row of rows) if (/qemu/.test(row.args) && row.args.includes(`file=${disk}`)) found.add(row.pid);
  return [...found];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Undo an appliance (a build that failed or was interrupted, or the action's
 * post step after a cancelled job): end its processes (TERM, then KILL after
 * 5 s), and check that they are gone. Its shell listens to no one but the
 * build that started it, so there is no one to ask to exit.
 */
export async function stopAppliance(host: Host, disk: string, pid?: string): Promise<void> {
  for (const signal of ['TERM', 'KILL']) {
    for (let i = 0; i < (host.live ? 20 : 1); i++) {
      const alive = await applianceProcesses(host, disk, pid);
      if (!alive.length) return;
      if (i === 0) await host.run(['kill', `-${signal}`, ...alive], { allowFailure: true });
      if (host.live) await sleep(250);
    }
  }
  const alive = await applianceProcesses(host, disk, pid);
  if (alive.length) throw new ApplianceError(`appliance processes still running: ${alive.join(', ')}`);
}
