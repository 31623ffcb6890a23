import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ImageSpec } from '../../src/config/image-spec.js';
import { generalizeSystem } from '../../src/guest/generalize.js';
import { localTree } from '../support/local-tree.js';
import { GuestTree } from '../../src/guest/guest-tree.js';
import { testContext, testSpec } from '../support/build-context.js';

const work = realpathSync(mkdtempSync(join(tmpdir(), 'generalize-test-')));
after(() => rmSync(work, { recursive: true, force: true }));

/** An installed system as an installer leaves it: one machine's identity and leftovers, and hostile symlinks. */
function installedSystem(name: string): { root: string; host: string } {
  const root = join(work, name, 'guest');
  const host = join(work, name, 'host');
  const files: Record<string, string> = {
    'etc/machine-id': '0123456789abcdef0123456789abcdef\n',
    'etc/ssh/ssh_host_ed25519_key': 'private\n',
    'etc/ssh/ssh_host_ed25519_key.pub': 'public\n',
    'etc/ssh/sshd_config': 'PermitRootLogin no\n',
    'var/lib/dhcp/dhclient.enp1s0.leases': 'lease {}\n',
    'var/lib/systemd/random-seed': 'seed',
    'var/lib/cloud/instance/boot-finished': 'x\n',
    'var/log/cloud-init.log': 'log\n',
    'root/.bash_history': 'ls\n',
    'home/user/.bash_history': 'ls\n',
    'home/user/notes.txt': 'kept\n',
    'var/log/wtmp': 'root pts/0 10.0.2.2',
    'var/log/lastlog': 'root 10.0.2.2',
    'tmp/build.sock': '',
    'var/cache/apt/archives/hello_2.10-3_amd64.deb': 'deb',
    'var/cache/apt/pkgcache.bin': 'kept',
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  mkdirSync(join(host, 'evil'), { recursive: true });
  writeFileSync(join(host, 'evil/.bash_history'), 'host history\n');
  writeFileSync(join(host, 'machine-id'), 'host machine id\n');
  mkdirSync(join(root, 'var/lib/dbus'), { recursive: true });
  symlinkSync('/etc/machine-id', join(root, 'var/lib/dbus/machine-id'));
  // A home folder that is a symlink out of the guest: never entered.
  symlinkSync(join(host, 'evil'), join(root, 'home/evil'));
  return { root, host };
}

const spec = (generalize: ImageSpec['generalize']): ImageSpec => testSpec({ outputDir: '/images', generalize });

describe('generalisation on the recording host', () => {
  test('yes: empties the machine ID, removes host keys, leases, seed, cloud-init state, histories, login records, /tmp and caches', async () => {
    const { root } = installedSystem('yes');
    const { ctx, reporter } = testContext(spec('yes'), { recording: true, uid: 0 });
    const changes: string[] = [];
    const rows = await generalizeSystem(ctx, new GuestTree(localTree(root, changes)));
    const rm = (path: string): string => `rm ${path}`;
    assert.deepEqual(changes, [
      `truncate etc/machine-id`,
      'truncate var/log/wtmp',
      'truncate var/log/lastlog',
      rm('etc/ssh/ssh_host_ed25519_key'),
      rm('etc/ssh/ssh_host_ed25519_key.pub'),
      rm('var/lib/dhcp/dhclient.enp1s0.leases'),
      rm('var/lib/systemd/random-seed'),
      rm('var/lib/cloud/instance'),
      rm('var/log/cloud-init.log'),
      rm('root/.bash_history'),
      rm('home/user/.bash_history'),
      rm('tmp/build.sock'),
      rm('var/cache/apt/archives/hello_2.10-3_amd64.deb'),
    ]);
    assert.deepEqual(
      rows.find((row) => row.path === '/var/lib/dbus/machine-id'),
      { operation: 'machine-id', path: '/var/lib/dbus/machine-id', found: 'link', done: 'left: a symlink' },
    );
    assert.equal(rows.find((row) => row.path === '/etc/machine-id')?.done, 'emptied');
    assert.ok(
      rows.every((row) => !row.path.startsWith('/home/evil')),
      'a home folder behind a symlink is not entered',
    );
    assert.match(reporter.text(), /Generalised: 14 paths\n {2}machine-id {13}\/etc\/machine-id: emptied/);
  });

  test('check: the same table with nothing changed', async () => {
    const { root } = installedSystem('check');
    const { ctx, recording, reporter } = testContext(spec('check'), { recording: true, uid: 0 });
    const rows = await generalizeSystem(ctx, new GuestTree(localTree(root)));
    assert.deepEqual(recording?.commands(), []);
    assert.equal(rows.length, 14);
    assert.equal(rows.find((row) => row.path === '/etc/machine-id')?.done, 'would empty');
    assert.equal(rows.find((row) => row.path === '/root/.bash_history')?.done, 'would remove');
    assert.match(reporter.text(), /Generalisation check \(nothing changed\): 14 paths/);
  });

  test('no: nothing looked at, nothing done', async () => {
    const { root } = installedSystem('no');
    const { ctx, recording } = testContext(spec('no'), { recording: true, uid: 0 });
    assert.deepEqual(await generalizeSystem(ctx, new GuestTree(localTree(root))), []);
    assert.deepEqual(recording?.calls, []);
  });

  test("an already empty machine ID is left as it is, and /etc/machine-id as a symlink to the host's is not emptied", async () => {
    const { root, host } = installedSystem('links');
    writeFileSync(join(root, 'etc/machine-id'), '');
    rmSync(join(root, 'var/lib/dbus/machine-id'));
    symlinkSync(join(host, 'machine-id'), join(root, 'var/lib/dbus/machine-id'));
    const { ctx, recording } = testContext(spec('yes'), { recording: true, uid: 0 });
    const rows = await generalizeSystem(ctx, new GuestTree(localTree(root)));
    assert.deepEqual(
      rows.filter((row) => row.operation === 'machine-id').map((row) => row.done),
      ['already empty', 'left: a symlink'],
    );
    assert.ok(!recording?.commands().some((command) => command.startsWith('truncate')));
  });
});
