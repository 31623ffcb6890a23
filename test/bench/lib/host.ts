import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { formatCommand } from '../../../src/host/command-error.js';
import { SystemHost } from '../../../src/host/system-host.js';
import type { Reporter } from '../../../src/common/reporter.js';
import type { Host } from '../../../src/host/host.js';
import type { Resource } from '../../../src/context/undo-list.js';
import { undoResource } from '../../../src/pipeline/resources.js';
import { output } from './proc.js';

/** A Reporter that prints nothing and keeps the warnings (and, for debugging, the commands). */
export class QuietReporter implements Reporter {
  readonly warnings: string[] = [];
  readonly infos: string[] = [];
  readonly commands: string[] = [];
  info(message: string): void {
    this.infos.push(message);
  }
  notice(message: string): void {
    this.infos.push(message);
  }
  warning(message: string): void {
    this.warnings.push(message);
  }
  error(message: string): void {
    this.warnings.push(`error: ${message}`);
  }
  command(argv: readonly string[]): void {
    this.commands.push(formatCommand(argv));
  }
  output(): void {}
  stepStarted(): void {}
  stepFinished(): void {}
  progress(): void {}
}

/** What the bench itself creates: the build's resources, and the loop devices and mounts of its own measurements. */
type BenchResource = Resource | { kind: 'loop'; backingFile: string } | { kind: 'mount'; path: string };

export interface Registration {
  readonly resource: BenchResource;
}

export async function loopDevicesOf(host: Host, backingFile: string): Promise<string[]> {
  const result = await host.run(['losetup', '--associated', backingFile, '--noheadings', '--output', 'NAME'], {
    captureStdout: true,
    quiet: true,
    allowFailure: true,
  });
  return result.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('/dev/'));
}

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}

async function undo(host: Host, resource: BenchResource): Promise<void> {
  if (resource.kind === 'loop') {
    for (const device of await loopDevicesOf(host, resource.backingFile))
      await host.run(['losetup', '--detach', device], { quiet: true });
  } else if (resource.kind === 'mount') {
    if (isMounted(resource.path)) await host.run(['umount', resource.path], { quiet: true });
  } else await undoResource(host, resource);
}

/** The bench's undo stack, newest first (the build's CleanupStack, with loop devices and mounts). */
class BenchCleanup {
  private readonly entries: Registration[] = [];
  constructor(private readonly host: Host) {}
  register(resource: BenchResource): Registration {
    const entry = { resource };
    this.entries.push(entry);
    return entry;
  }
  async release(entry: Registration): Promise<void> {
    await undo(this.host, entry.resource);
    this.forget(entry);
  }
  forget(entry: Registration): void {
    const index = this.entries.indexOf(entry);
    if (index >= 0) this.entries.splice(index, 1);
  }
  async unwind(): Promise<string[]> {
    const failures: string[] = [];
    for (const entry of [...this.entries].reverse()) {
      try {
        await this.release(entry);
      } catch (error) {
        failures.push(`${entry.resource.kind}: ${(error as Error).message}`);
      }
    }
    return failures;
  }
}

/** The bench's own host and undo stack (loop devices, mounts, files), unwound on exit and on Ctrl-C. */
export class BenchHost {
  readonly reporter = new QuietReporter();
  readonly host = new SystemHost(this.reporter);
  readonly cleanup = new BenchCleanup(this.host);

  /** Attach a byte range of a file to a loop device; detached on release or at the end. */
  async attachLoop(
    file: string,
    offset: number,
    size: number,
    readOnly = false,
  ): Promise<{ device: string; entry: Registration }> {
    const entry = this.cleanup.register({ kind: 'loop', backingFile: file });
    const device = (
      await output([
        'losetup',
        '--find',
        '--show',
        ...(readOnly ? ['--read-only'] : []),
        '--offset',
        String(offset),
        '--sizelimit',
        String(size),
        file,
      ])
    ).trim();
    return { device, entry };
  }

  /** Mount a device at a new folder; unmounted (and the folder removed) on release or at the end. */
  async mount(
    device: string,
    mountpoint: string,
    options?: string,
  ): Promise<{ dir: Registration; mount: Registration }> {
    const dir = this.cleanup.register({ kind: 'path', path: mountpoint });
    await mkdir(mountpoint, { recursive: true });
    const mount = this.cleanup.register({ kind: 'mount', path: mountpoint });
    await output(['mount', ...(options ? ['-o', options] : []), device, mountpoint]);
    return { dir, mount };
  }

  async unmount(handle: { dir: Registration; mount: Registration }): Promise<void> {
    await this.cleanup.release(handle.mount);
    await this.cleanup.release(handle.dir);
  }

  /**
   * Last line of defence: unmount whatever is mounted from a loop device
   * backed by a file under `root` (the child process's scrub mounts under its
   * own TMPDIR), detach those loop devices, and say what was left.
   */
  async sweep(root: string): Promise<string[]> {
    const found: string[] = [];
    const loops = (await output(['losetup', '--list', '--noheadings', '--output', 'NAME,BACK-FILE']))
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([name, file]) => name && file && file.startsWith(`${root}/`));
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    for (const line of mountinfo) {
      const fields = line.split(' ');
      const point = fields[4];
      const source = fields[fields.indexOf('-') + 2];
      if (point && (point.startsWith(`${root}/`) || loops.some(([name]) => name === source))) {
        found.push(`mount ${point}`);
        await this.host.run(['umount', '--lazy', point], { allowFailure: true, quiet: true });
      }
    }
    for (const [name, file] of loops) {
      found.push(`loop ${name} (${file})`);
      for (const device of await loopDevicesOf(this.host, file))
        await this.host.run(['losetup', '--detach', device], { allowFailure: true, quiet: true });
    }
    return found;
  }
}
