import type { BuildContext } from '../context/build-context.js';
import type { EntryKind, GuestTree } from './guest-tree.js';

/**
 * What makes an installed system one machine rather than an image to clone,
 * as virt-sysprep's default operations see it. Paths are relative to the
 * guest's root; `*` matches within one component. `empty` truncates a regular
 * file (an empty /etc/machine-id is what systemd expects of an image: a new
 * ID at first boot), `remove` removes the match (a folder with what it holds).
 */
export interface Operation {
  name: string;
  action: 'empty' | 'remove';
  patterns: string[];
}

export const OPERATIONS: Operation[] = [
  { name: 'machine-id', action: 'empty', patterns: ['etc/machine-id', 'var/lib/dbus/machine-id'] },
  { name: 'ssh-hostkeys', action: 'remove', patterns: ['etc/ssh/ssh_host_*_key', 'etc/ssh/ssh_host_*_key.pub'] },
  {
    name: 'dhcp-client-state',
    action: 'remove',
    patterns: [
      'var/lib/dhcp/*.leases',
      'var/lib/dhclient/*',
      'var/lib/dhcpcd/*',
      'var/lib/NetworkManager/*.lease',
      'var/lib/NetworkManager/dhclient-*',
      'var/lib/wicked/lease-*',
    ],
  },
  {
    name: 'random-seed',
    action: 'remove',
    patterns: ['var/lib/systemd/random-seed', 'var/lib/urandom/random-seed', 'var/lib/random-seed'],
  },
  {
    name: 'cloud-init',
    action: 'remove',
    patterns: ['var/lib/cloud/*', 'var/log/cloud-init.log', 'var/log/cloud-init-output.log'],
  },
  {
    name: 'shell-history',
    action: 'remove',
    patterns: ['root/.*_history', 'home/*/.*_history'],
  },
  // Who logged in, and from where: a provisioning boot's SSH sessions among them. Emptied, not removed, as
  // the image's login tools and systemd-tmpfiles expect the files to be there.
  { name: 'login-records', action: 'empty', patterns: ['var/log/wtmp', 'var/log/btmp', 'var/log/lastlog'] },
  { name: 'tmp-files', action: 'remove', patterns: ['tmp/*', 'var/tmp/*'] },
  {
    name: 'package-manager-cache',
    action: 'remove',
    patterns: ['var/cache/apt/archives/*.deb', 'var/cache/dnf/*', 'var/cache/yum/*', 'var/cache/zypp/packages/*'],
  },
];

/** One line of the generalisation table: what was found at a path and what became of it. */
export interface GeneralizeRow {
  operation: string;
  path: string;
  found: EntryKind;
  done:
    'emptied' | 'removed' | 'would empty' | 'would remove' | 'already empty' | 'left: a symlink' | 'left: not a file';
}

function globRegex(component: string): RegExp {
  const body = component
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*');
  return new RegExp(`^${body}$`);
}

/**
 * The guest paths a pattern matches: a plain component resolved within the
 * guest's root (GuestTree.resolveFolder), a `*` component matched against the
 * entries of a folder (folders only on the way, never through a symlink), the
 * last component's matches as they are.
 */
export async function matchPattern(
  tree: GuestTree,
  pattern: string,
): Promise<Array<{ path: string; kind: EntryKind }>> {
  const parts = pattern.split('/');
  const leaf = parts.pop() ?? '';
  let folders = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const folder of folders) {
      if (!part.includes('*')) {
        const resolved = await tree.resolveFolder(folder ? `${folder}/${part}` : part);
        if (!('missing' in resolved)) next.push(resolved.path);
        continue;
      }
      const regex = globRegex(part);
      for (const entry of await tree.list(folder))
        if (entry.kind === 'dir' && regex.test(entry.name)) next.push(folder ? `${folder}/${entry.name}` : entry.name);
    }
    folders = next;
  }
  const regex = globRegex(leaf);
  const found: Array<{ path: string; kind: EntryKind }> = [];
  for (const folder of folders) {
    for (const entry of await tree.list(folder)) {
      if (regex.test(entry.name))
        found.push({ path: folder ? `${folder}/${entry.name}` : entry.name, kind: entry.kind });
    }
  }
  return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Apply (yes) or only report (check) one match of an operation; a path to remove goes on `removals`. */
async function applyOne(
  ctx: BuildContext,
  tree: GuestTree,
  operation: Operation,
  match: { path: string; kind: EntryKind },
  removals: string[],
): Promise<GeneralizeRow['done']> {
  const apply = ctx.spec.generalize === 'yes';
  if (operation.action === 'remove') {
    if (apply) removals.push(match.path);
    return apply ? 'removed' : 'would remove';
  }
  // Empty only a regular file of the guest: a symlink (/var/lib/dbus/machine-id → /etc/machine-id) stays as it is.
  if (match.kind === 'link') return 'left: a symlink';
  if (match.kind !== 'file') return 'left: not a file';
  // Its size, not its content: nothing of the guest's is read to empty it.
  if ((await tree.kind(match.path)).size === 0) return 'already empty';
  if (apply) await tree.empty(match.path);
  return apply ? 'emptied' : 'would empty';
}

/**
 * The generalisation operations on the mounted guest, after the installer
 * logs are gone: each match applied (generalize = yes) or only reported
 * (check), every path inside the guest's tree with no symlink on the way.
 * What is removed is removed once every pattern was matched, in one go.
 */
export async function generalizeSystem(ctx: BuildContext, tree: GuestTree): Promise<GeneralizeRow[]> {
  if (ctx.spec.generalize === 'no') return [];
  const rows: GeneralizeRow[] = [];
  const removals: string[] = [];
  for (const operation of OPERATIONS) {
    for (const pattern of operation.patterns) {
      for (const match of await matchPattern(tree, pattern)) {
        const done = await applyOne(ctx, tree, operation, match, removals);
        rows.push({ operation: operation.name, path: `/${match.path}`, found: match.kind, done });
      }
    }
  }
  // All at once (no pattern matches inside another's match: each removal stands alone).
  await tree.removeAll(removals);
  const verb = ctx.spec.generalize === 'yes' ? 'Generalised' : 'Generalisation check (nothing changed)';
  const lines = rows.map((row) => `  ${row.operation.padEnd(22)} ${row.path}: ${row.done}`);
  ctx.reporter.info(
    `${verb}: ${rows.length ? `${rows.length} path${rows.length === 1 ? '' : 's'}\n${lines.join('\n')}` : 'nothing found'}`,
  );
  return rows;
}

/** The guest folders the operations look into (each pattern's folder up to its first `*`), for GuestTree.survey. */
export function patternFolders(patterns: readonly string[]): string[] {
  return patterns.map((pattern) => {
    const parts = pattern.split('/').slice(0, -1);
    const glob = parts.findIndex((part) => part.includes('*'));
    return (glob < 0 ? parts : parts.slice(0, glob)).join('/');
  });
}
