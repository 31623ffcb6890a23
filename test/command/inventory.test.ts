import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { localTree } from '../support/local-tree.js';
import { GuestTree } from '../../src/guest/guest-tree.js';
import { inspectSystem } from '../../src/guest/inventory.js';
import { testContext, testSpec } from '../support/build-context.js';
import { RPM_PACKAGES, rpmDatabase } from '../support/rpm-database.js';

const work = mkdtempSync(join(tmpdir(), 'rpm-inventory-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe("an rpm system's package database, read with the host's rpm", () => {
  test('a real rpm database in /usr/lib/sysimage/rpm, reached through /var/lib/rpm, is read into the inventory', async () => {
    const root = join(work, 'guest');
    rpmDatabase(work, join(root, 'usr/lib/sysimage/rpm'));
    mkdirSync(join(root, 'var/lib'), { recursive: true });
    symlinkSync('../../usr/lib/sysimage/rpm', join(root, 'var/lib/rpm'));
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/os-release'), 'ID=fedora\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40"\n');
    const before = readdirSync(join(root, 'usr/lib/sysimage/rpm')).sort();
    const { ctx, reporter } = testContext(testSpec({ outputDir: work }));
    const inventory = await inspectSystem(ctx, new GuestTree(localTree(root)));
    assert.equal(inventory.packageManager, 'rpm');
    assert.deepEqual(inventory.packages, RPM_PACKAGES);
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
