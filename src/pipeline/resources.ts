import type { Host } from '../host/host.js';
import { stopAppliance } from '../guest/appliance.js';
import { describeResource, type Registration, type Resource, type UndoList } from '../context/undo-list.js';

/** Undo one resource. Idempotent: undoing what is already gone succeeds. */
export async function undoResource(host: Host, resource: Resource): Promise<void> {
  switch (resource.kind) {
    case 'domain':
      await undoDomain(host, resource);
      return;
    case 'appliance':
      await stopAppliance(host, resource.disk, resource.pid);
      return;
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

/**
 * The undo stack of a build. Every resource is registered before it is
 * created, so that an interruption at any moment leaves nothing behind.
 */
export class CleanupStack implements UndoList {
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
