/**
 * Something a build creates and must undo. Plain data, so that the action can
 * keep the list in its saved state and its post step can finish the job after
 * the main step was killed.
 */
export type Resource =
  /** nvram: the UEFI domain's NVRAM file (libvirt's default path, see nvramPath), removed with the domain. */
  | { kind: 'domain'; uri: string; name: string; nvram?: string }
  /** A libguestfs appliance on a disk; its guestfish pid once it is known. */
  | { kind: 'appliance'; disk: string; pid?: string }
  | { kind: 'path'; path: string }
  | { kind: 'acl'; path: string; entry: string };

export function describeResource(resource: Resource): string {
  switch (resource.kind) {
    case 'domain':
      return `libvirt domain ${resource.name} (${resource.uri})${resource.nvram ? ` and its NVRAM ${resource.nvram}` : ''}`;
    case 'appliance':
      return `libguestfs appliance on ${resource.disk}${resource.pid ? ` (guestfish pid ${resource.pid})` : ''}`;
    case 'path':
      return resource.path;
    case 'acl':
      return `ACL entry ${resource.entry} on ${resource.path}`;
  }
}

export interface Registration {
  readonly resource: Resource;
}

/** Where a part registers what it creates (CleanupStack, in pipeline/resources.ts, undoes it). */
export interface UndoList {
  register(resource: Resource): Registration;
  /** Undo one resource now (the normal path) and forget it. */
  release(entry: Registration): Promise<void>;
  /** The resource became a result (a file moved to its final name): nothing to undo. */
  forget(entry: Registration): void;
  pending(): Resource[];
  /** Undo everything still registered, newest first; the failures, described. */
  unwind(): Promise<string[]>;
}
