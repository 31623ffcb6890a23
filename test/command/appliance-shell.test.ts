import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { Appliance } from '../../src/guest/appliance.js';
import { runScript } from '../../src/guest/appliance-shell.js';
import { toolsScript } from '../../src/guest/zero-check.js';

/**
 * The scripts the scrub runs in the appliance's own shell, run here by the
 * host's sh (what `debug sh` does in the appliance): the transport's status,
 * pieces and base64, and the tools' wrapper. The host's /tmp stands for the
 * appliance's (the scripts keep their output in /tmp/ifx-*).
 */
const hostShell: Pick<Appliance, 'call'> & { calls: number } = {
  calls: 0,
  async call(command, args = []) {
    assert.equal(command, 'debug');
    assert.equal(args[0], 'sh');
    this.calls++;
    const run = spawnSync('sh', ['-c', args[1]], { maxBuffer: 64 << 20 });
    return { ok: run.status === 0, stdout: run.stdout.toString('utf8'), error: run.stderr.toString('utf8') };
  },
};

describe("scripts in the appliance's shell", () => {
  test('output of any bytes and of any size comes back whole, in pieces under the message limit', async () => {
    hostShell.calls = 0;
    const out = await runScript(
      hostShell,
      'a test',
      'head -c 5000000 /dev/urandom > /tmp/ifx-test.bin\ncat /tmp/ifx-test.bin',
    );
    const expected = readFileSync('/tmp/ifx-test.bin');
    assert.equal(out.length, 5_000_000);
    assert.ok(out.equals(expected));
    assert.equal(hostShell.calls, 3, 'three pieces of at most 2 MiB');
  });

  test('a script that fails is an error with its exit status and the end of its error output', async () => {
    await assert.rejects(
      runScript(hostShell, 'a test', 'echo partial\necho "it broke" >&2\nexit 7'),
      /^ApplianceScriptError: a test failed in the appliance \(exit 7\): it broke$/,
    );
  });

  test("a tool that fails stops the listing with its own exit status, not the shell's test's", () => {
    const run = spawnSync('sh', [
      '-c',
      toolsScript([
        ['first', 'echo one'],
        ['broken', "echo 'no such device' >&2; exit 3"],
        ['never', 'echo three'],
      ]),
    ]);
    assert.equal(run.status, 0);
    assert.equal(run.stdout.toString(), '== first\none\n== broken\n== failed: broken (exit 3): no such device \n');
  });
});
