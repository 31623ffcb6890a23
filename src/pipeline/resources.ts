import type { Host } from '../host/host.js';

/**
 * Something a build creates and must undo. Plain data, so that the action can
 * keep the list in its saved state and its post step can finish the job after
 * the main step was killed.
 */
export type Resource =
  /** nvram: the UEFI domain's NVRAM file (libvirt's default path, see nvramPath), removed with the domain. */
  | { kind: 'domain'; uri: string; name: string; nvram?: string }
  | { kind: 'loop'; backingFile: string }
  | { kind: 'mount'; path: string }
  | { kind: 'path'; path: string }
  | { kind: 'acl'; path: string; entry: string };

export function describeResource(resource: Resource): string {
  switch (resource.kind) {
    case 'domain':
      return `libvirt domain ${resource.name} (${resource.uri})${resource.nvram ? ` and its NVRAM ${resource.nvram}` : ''}`;
    case 'loop':
      return `loop devices backed by ${resource.backingFile}`;
    case 'mount':
      return `mount at ${resource.path}`;
    case 'path':
      return resource.path;
    case 'acl':
      return `ACL entry ${resource.entry} on ${resource.path}`;
  }
}

/** Undo one resource. Idempotent: undoing what is already gone succeeds. */
export async function undoResource(host: Host, resource: Resource): Promise<void> {
  switch (resource.kind) {
    case 'domain':
      await undoDomain(host, resource);
      return;
    case 'loop': {
      for (const device of await loopDevicesOf(host, resource.backingFile)) {
        await host.run(['losetup', '--detach', device], { root: true });
      }
      return;
    }
    case 'mount': {
      if (!host.isMounted(resource.path)) return;
      const result = await host.run(['umount', resource.path], { root: true, allowFailure: true });
      if (result.exitCode !== 0 && host.isMounted(resource.path)) {
        // Something still holds it (a shell in the folder): detach it lazily rather than leave it.
        await host.run(['umount', '--lazy', resource.path], { root: true });
      }
      return;
    }
    case 'path':
      await host.remove(resource.path);
      return;
    case 'acl':
      await host.run(['setfacl', '-x', resource.entry, resource.path], { root: true, allowFailure: true });
      return;
  }
}

async function undoDomain(host: Host, resource: Extract<Resource, { kind: 'domain' }>): Promise<void> {
  const state = await host.run(['virsh', '-c', resource.uri, 'domstate', resource.name], {
    allowFailure: true,
    quiet: true,
    captureStdout: true,
  });
  if (state.exitCode === 0) {
    if (!/shut off/.test(state.stdout)) {
      await host.run(['virsh', '-c', resource.uri, 'destroy', resource.name], { allowFailure: true });
    }
    const nvram = resource.nvram ? ['--nvram'] : [];
    await host.run(['virsh', '-c', resource.uri, 'undefine', resource.name, ...nvram], { allowFailure: true });
    const after = await host.run(['virsh', '-c', resource.uri, 'domstate', resource.name], {
      allowFailure: true,
      quiet: true,
      captureStdout: true,
    });
    if (after.exitCode === 0) throw new Error(`libvirt domain ${resource.name} is still defined`);
  }
  // A transient domain (the boot test's) leaves its NVRAM behind when it stops: removed here.
  if (resource.nvram) await host.remove(resource.nvram);
}

export async function loopDevicesOf(host: Host, backingFile: string): Promise<string[]> {
  const result = await host.run(['losetup', '--associated', backingFile, '--noheadings', '--output', 'NAME'], {
    captureStdout: true,
    quiet: true,
    readOnly: true,
    allowFailure: true,
  });
  return result.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('/dev/'));
}

export interface Registration {
  readonly resource: Resource;
}

/**
 * The undo stack of a build. Every resource is registered before it is
 * created, so that an interruption at any moment leaves nothing behind.
 */
export class CleanupStack {
  private readonly entries: Registration[] = [];

  constructor(
    private readonly host: Host,
    private readonly onChange?: (pending: Resource[]) => void,
  ) {}

  register(resource: Resource): Registration {
    const entry = { resource };
    this.entries.push(entry);
    this.notify();
    return entry;
  }

  /** Undo one resource now (the normal path) and forget it. */
  async release(entry: Registration): Promise<void> {
    await undoResource(this.host, entry.resource);
    this.forget(entry);
  }

  /** The resource became a result (a file moved to its final name): nothing to undo. */
  forget(entry: Registration): void {
    const index = this.entries.indexOf(entry);
    if (index >= 0) this.entries.splice(index, 1);
    this.notify();
  }

  pending(): Resource[] {
    return this.entries.map((entry) => entry.resource);
  }

  /**
   * Undo everything still registered, newest first. Returns the failures,
   * already described; what could not be undone stays registered, so that
   * the action's post step can try again.
   */
  async unwind(): Promise<string[]> {
    const failures: string[] = [];
    for (const entry of [...this.entries].reverse()) {
      try {
        await undoResource(this.host, entry.resource);
        this.forget(entry);
      } catch (error) {
        failures.push(`could not remove ${describeResource(entry.resource)}: ${(error as Error).message}`);
      }
    }
    return failures;
  }

  private notify(): void {
    this.onChange?.(this.pending());
  }
}
