import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { localTree } from '../support/local-tree.js';
import { GuestTree } from '../../src/pipeline/guest-tree.js';
import { inspectSystem } from '../../src/pipeline/inventory.js';
import { testContext, testSpec } from '../support/build-context.js';

const work = mkdtempSync(join(tmpdir(), 'rpm-inventory-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A spec of a noarch package with an epoch and a subpackage (whose source rpm is the main package's). */
const SPEC = `Name: fixture-hello
Version: 1.2
Release: 3.fx1
Epoch: 1
Summary: A fixture package
License: MIT
BuildArch: noarch
%description
A fixture package.
%package libs
Summary: Its library
%description libs
Its library.
%files
%files libs
`;

/** Build the spec's packages with the host's rpmbuild and install them into a database of their own. */
function rpmDatabase(dbPath: string): void {
  writeFileSync(join(work, 'fixture.spec'), SPEC);
  const top = join(work, 'rpmbuild');
  execFileSync('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, join(work, 'fixture.spec')], {
    stdio: 'pipe',
  });
  const rpms = readdirSync(join(top, 'RPMS', 'noarch')).map((name) => join(top, 'RPMS', 'noarch', name));
  mkdirSync(dbPath, { recursive: true });
  execFileSync('rpm', ['--dbpath', dbPath, '--initdb']);
  execFileSync('rpm', ['--dbpath', dbPath, '--install', '--justdb', '--nodeps', '--ignoreos', ...rpms], {
    stdio: 'pipe',
  });
}

describe("an rpm system's package database, read with the host's rpm", () => {
  test('a real rpm database in /usr/lib/sysimage/rpm, reached through /var/lib/rpm, is read into the inventory', async () => {
    const root = join(work, 'guest');
    rpmDatabase(join(root, 'usr/lib/sysimage/rpm'));
    mkdirSync(join(root, 'var/lib'), { recursive: true });
    symlinkSync('../../usr/lib/sysimage/rpm', join(root, 'var/lib/rpm'));
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/os-release'), 'ID=fedora\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40"\n');
    const before = readdirSync(join(root, 'usr/lib/sysimage/rpm')).sort();
    const { ctx, reporter } = testContext(testSpec({ outputDir: work }));
    const inventory = await inspectSystem(ctx, new GuestTree(localTree(root)));
    assert.equal(inventory.packageManager, 'rpm');
    assert.deepEqual(inventory.packages, [
      {
        name: 'fixture-hello',
        version: '1:1.2-3.fx1',
        architecture: 'noarch',
        source: 'fixture-hello',
        sourceVersion: '1.2-3.fx1',
      },
      {
        name: 'fixture-hello-libs',
        version: '1:1.2-3.fx1',
        architecture: 'noarch',
        source: 'fixture-hello',
        sourceVersion: '1.2-3.fx1',
      },
    ]);
    assert.match(reporter.text(), /Installed system: Fedora Linux 40, .*, 2 packages \(rpm\)/);
    // rpm queried a copy: nothing new in the guest's database folder, the copy gone.
    assert.deepEqual(readdirSync(join(root, 'usr/lib/sysimage/rpm')).sort(), before);
    assert.deepEqual(ctx.cleanup.pending(), []);
    assert.deepEqual(
      readdirSync(tmpdir()).filter((name) => name.startsWith('image-factory-rpmdb.')),
      [],
    );
  });
});
