/**
 * A provisioner that fails, end to end on the real-Debian fixture (cloud-init
 * and sshd): the build stops in the step provision, names the line and where
 * it was written, and leaves nothing behind. One build, its failing line
 * first after one that passes, to keep CI's time: the boot reaches SSH, and
 * the failure comes right after.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { serveRootfs, writeDebianFixtureConfig } from '../support/debian-fixture.js';
import { makeWorkDir } from '../support/fixture.js';
import { leftovers } from '../support/leftovers.js';
import { builtStem, runCli } from '../support/run-cli.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('a provisioner that fails', () => {
  test('a `shell` line that exits 7 fails the build with exit 1 in the step provision, naming the line, its file:line, its exit code and last lines; the next provisioner never runs; nothing is published and nothing is left (domain, NVRAM, seed, keys, the forwarded port)', async (t) => {
    const server = await serveRootfs(t);
    const dir = makeWorkDir('provision-failure');
    dirs.push(dir);
    writeFileSync(join(dir, 'never.txt'), 'never copied\n');
    const { config, image } = writeDebianFixtureConfig(dir, {
      rootfsUrl: server.url,
      keys: {
        provision: [
          'shell echo first line ran',
          'shell echo it went wrong >&2; exit 7',
          'file never.txt /etc/never',
        ].join('\n    '),
      },
    });
    const line =
      readFileSync(config, 'utf8')
        .split('\n')
        .findIndex((text) => text.includes('exit 7')) + 1;
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 1, run.stderr);
    const stem = builtStem(run.stderr, image);
    assert.match(run.stderr, /provisioner 1 \(shell\) done in /);
    assert.match(
      run.stderr,
      new RegExp(
        `provision step failed: ${config.replace(/[.]/g, '\\.')}:${line}: \\[${image}\\] provision: ` +
          `the provisioner 'shell echo it went wrong >&2; exit 7' exited with code 7; its last lines:\\n.*it went wrong`,
      ),
    );
    assert.doesNotMatch(run.stderr, /provisioner 3\/3|== scrub:/);
    const port = /SSH through 127\.0\.0\.1:(\d+) only/.exec(run.stderr)?.[1];
    assert.ok(port, 'the build named its forwarded port');
    const listening = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
    assert.equal(listening.trim(), '', `nothing listens on the forwarded port ${port}`);
    const domains = new Set([...run.stderr.matchAll(/virt-install .*?--name (\S+)/g)].map((match) => match[1]));
    assert.equal(domains.size, 2, 'the installer and the provisioning VM');
    const defined = execFileSync('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'], { encoding: 'utf8' });
    assert.deepEqual(
      defined.split('\n').filter((name) => domains.has(name.trim())),
      [],
    );
    assert.deepEqual(
      readdirSync(dir, { recursive: true }).filter((f) =>
        /\.provision-|id_ed25519|known_hosts|seed\.iso|\.qcow2$/.test(String(f)),
      ),
      [],
    );
    assert.deepEqual(leftovers(dir, stem), []);
  });
});
