/**
 * Host conditions that change the machine for every VM beside them, so
 * scripts/run-tests.mjs runs this file alone: /dev/kvm made root-only (every
 * libvirt call then takes about a minute). The build conditions that can run
 * beside other tests are in work-folders.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, statSync, chmodSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { makeWorkDir, writeFixtureConfig } from '../support/fixture.js';
import { runCli } from '../support/run-cli.js';

const cleanups: Array<() => void> = [];
after(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
});

describe('a host whose /dev/kvm only root may open (alone: every VM beside it would wait a minute a libvirt call)', () => {
  test('/dev/kvm that only root may open is reported with the fix, and the build falls back to TCG', async () => {
    if (!existsSync('/dev/kvm')) return;
    const before = statSync('/dev/kvm').mode & 0o777;
    chmodSync('/dev/kvm', 0o600);
    try {
      const dir = makeWorkDir('kvm600');
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const { config, image } = writeFixtureConfig(dir, { keys: { accelerator: 'auto' } });
      const run = await runCli([image, '--dry-run'], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stderr,
        /WARNING: KVM is not usable \(\/dev\/kvm is mode 600: libvirt's qemu user cannot open it. Fix: chgrp kvm \/dev\/kvm && chmod 660 \/dev\/kvm/,
      );
      assert.match(run.stderr, /--virt-type qemu/);
      const strict = await runCli([image, '--dry-run', '--accelerator', 'kvm'], {
        cwd: dir,
        env: { IMAGE_FACTORY_CONFIG: config },
      });
      assert.equal(strict.code, 2);
      assert.match(strict.stderr, /accelerator = kvm, but KVM is not usable: \/dev\/kvm is mode 600/);
    } finally {
      chmodSync('/dev/kvm', before);
    }
  });
});
