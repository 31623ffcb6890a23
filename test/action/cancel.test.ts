import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import type { Resource } from '../../src/context/undo-list.js';
import { cancelLikeRunner, killTree, removeRunnerDirs, runMain, runPost } from '../support/action-runner.js';
import { domainRunning, virtInstallDomain } from '../support/domain-state.js';
import { writeFixtureConfig } from '../support/fixture.js';
import { leftovers } from '../support/leftovers.js';
import { fixtureInputs, isolatedConfig, removeWorkDirs, workDir } from './fixture-build.js';
import { builtStem } from '../support/run-cli.js';

after(() => {
  removeWorkDirs();
  removeRunnerDirs();
});

/** Calls `stop` once the installer's domain runs (however long a busy machine takes to start it). */
function duringInstall(stop: (child: ChildProcess) => void): {
  onStdout: (text: string, child: ChildProcess) => void;
  stoppedAt: () => number | undefined;
} {
  let log = '';
  let domain: string | undefined;
  let stoppedAt: number | undefined;
  return {
    onStdout: (text, child) => {
      log += text;
      if (domain) return;
      domain = virtInstallDomain(log, /\$ virt-install .*?--name (\S+)/);
      if (!domain) return;
      void domainRunning(domain, () => child.exitCode !== null || child.signalCode !== null).then((running) => {
        if (!running) return;
        stoppedAt = Date.now();
        stop(child);
      });
    },
    stoppedAt: () => stoppedAt,
  };
}

function builtFiles(dir: string, stem: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith(stem) && /\.(qcow2|raw|sha256sum)$/.test(name));
}

describe('a cancelled build', () => {
  test('cancelled as the runner cancels (SIGINT, SIGTERM 7.5 s later): main cleans up before SIGTERM is due, post finds nothing left', async () => {
    const dir = workDir('cancel');
    // The fixture installer hangs instead of powering off: the install step runs until stopped.
    const { config, image } = writeFixtureConfig(dir, { name: 'action-cancel', directives: { hang: 1 } });
    const inputs = fixtureInputs(dir, config, image);
    let closedAt = 0;
    const cancel = duringInstall(cancelLikeRunner);
    const run = await runMain(inputs, { env: isolatedConfig(dir), onStdout: cancel.onStdout }).finally(
      () => (closedAt = Date.now()),
    );
    const stoppedAt = cancel.stoppedAt();
    assert.ok(stoppedAt, `the install never started:\n${run.stdout}`);
    const stem = builtStem(run.stdout, image);

    assert.equal(run.code, 1, run.stdout);
    assert.ok(
      closedAt - stoppedAt < 7500,
      `main took ${closedAt - stoppedAt} ms after SIGINT: it did not clean up at once`,
    );
    assert.ok(
      run.annotations.some(
        (a) => a.level === 'warning' && a.message === 'SIGINT received: stopping the build and cleaning up',
      ),
    );
    assert.deepEqual(
      run.annotations.filter((a) => a.level === 'error').map((a) => a.message),
      ['Interrupted by SIGINT during the install step; everything the build had created was removed.'],
    );
    assert.match(run.stdout, /\$ virsh -c qemu:\/\/\/system destroy /);
    assert.equal(run.state['pending-resources'], '[]');
    assert.match(run.summary, /The install step \(Run the unattended installer\) failed/);

    const post = await runPost(inputs, run.state);
    assert.equal(post.code, 0, post.stdout);
    assert.match(post.stdout, /Nothing left to clean up\./);
    assert.deepEqual(builtFiles(dir, stem), []);
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('main killed outright (SIGKILL) mid-install under UEFI: the state saved as it went lets post remove the domain, its NVRAM and the staging folder', async () => {
    const dir = workDir('killed');
    const { config, image } = writeFixtureConfig(dir, { name: 'action-killed', directives: { hang: 1 } });
    const inputs = { ...fixtureInputs(dir, config, image), firmware: 'uefi' };
    const kill = duringInstall(killTree);
    const run = await runMain(inputs, { env: isolatedConfig(dir), onStdout: kill.onStdout });
    assert.ok(kill.stoppedAt(), `the install never started:\n${run.stdout}`);
    const stem = builtStem(run.stdout, image);
    assert.equal(run.signal, 'SIGKILL');

    const pending = JSON.parse(run.state['pending-resources']) as Resource[];
    assert.deepEqual(
      pending.map((resource) => resource.kind),
      ['path', 'domain'],
      'the staging folder, then the domain, registered before they were created',
    );
    const before = leftovers(dir, stem);
    assert.ok(
      before.some((item) => item.startsWith('domain ')),
      `the domain should still be there: ${before.join(', ')}`,
    );
    assert.ok(
      before.some((item) => item.startsWith('NVRAM ')),
      `the domain's NVRAM should still be there: ${before.join(', ')}`,
    );
    assert.ok(
      before.some((item) => item.startsWith('staging ')),
      `the staging folder should still be there: ${before.join(', ')}`,
    );

    const post = await runPost(inputs, run.state);
    assert.equal(post.code, 0, post.stdout);
    assert.deepEqual(
      post.annotations.filter((a) => a.level !== 'notice'),
      [],
      post.stdout,
    );
    assert.match(post.stdout, /::group::Clean up after the interrupted build \(2 left\)/);
    assert.match(
      post.stdout,
      /Removed libvirt domain .* \(qemu:\/\/\/system\) and its NVRAM \/var\/lib\/libvirt\/qemu\/nvram\/action-killed-\S+_VARS\.fd/,
    );
    assert.match(post.stdout, /Removed \/.*\.partial-/);
    assert.deepEqual(builtFiles(dir, stem), []);
    assert.deepEqual(leftovers(dir, stem), []);

    // Idempotent: run again (e.g. a re-run of the job), it only checks.
    const again = await runPost(inputs, run.state);
    assert.equal(again.code, 0);
    assert.deepEqual(again.annotations, []);
  });
});
