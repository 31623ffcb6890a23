/**
 * node build/test/bench/provision.bench.js [--keep]   (part of npm run bench)
 *
 * The provisioning boot's cost, on the real-Debian fixture (cloud-init and
 * sshd) built by the bundled command: the time from starting the VM until SSH
 * answered with the pinned host key, each provisioner's time (a file, a shell
 * line, an Ansible playbook that templates a file), the power-off, and the
 * whole provision step beside the install and the scrub. The figures are the
 * build's own, read from its metrics file. It exits non-zero when the build
 * fails; a slow figure is only printed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BuildMetrics } from '../../src/supply-chain/metrics.js';
import { serveRootfs, writeDebianFixtureConfig } from '../support/debian-fixture.js';
import { runCli } from '../support/run-cli.js';
import { seconds, table } from './lib/format.js';

const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false } } });

async function main(): Promise<number> {
  const dir = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'provision-bench-'));
  const server = await serveRootfs();
  try {
    writeFileSync(join(dir, 'motd'), 'provisioned by the bench\n');
    writeFileSync(join(dir, 'template.j2'), 'built for {{ inventory_hostname }}\n');
    writeFileSync(
      join(dir, 'site.yml'),
      '- hosts: all\n  gather_facts: false\n  tasks:\n' +
        '    - ansible.builtin.template: { src: template.j2, dest: /etc/bench-template, mode: "0644" }\n',
    );
    const { config, image } = writeDebianFixtureConfig(dir, {
      rootfsUrl: server.url,
      keys: {
        provision: ['file motd /etc/motd', 'shell systemctl is-system-running --wait || true', 'ansible site.yml'].join(
          '\n    ',
        ),
      },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    if (run.code !== 0) {
      process.stderr.write(run.stderr.split('\n').slice(-40).join('\n'));
      return 1;
    }
    const file = readdirSync(dir).find((name) => name.endsWith('.metrics.json'));
    if (!file) throw new Error('the build wrote no metrics file');
    const metrics = JSON.parse(readFileSync(join(dir, file), 'utf8')) as BuildMetrics;
    const provision = metrics.provision;
    if (!provision) throw new Error('the metrics hold no provisioning figures');
    const s = (value: number): string => seconds(value * 1000);
    const step = (name: string): string =>
      s(metrics.steps.filter((entry) => entry.step === name).reduce((sum, entry) => sum + entry.seconds, 0));
    console.log(
      table(
        [
          ['phase', 'time'],
          ['VM start to SSH (host key pinned)', s(provision.toSshSeconds)],
          ...provision.provisioners.map(({ provisioner, seconds: time }) => [`  ${provisioner}`, s(time)]),
          ['finishing script and power-off', s(provision.powerOffSeconds)],
          ['provision step, whole', step('provision')],
          ['install step, for comparison', step('install')],
          ['scrub step, for comparison', step('scrub')],
        ],
        `Provisioning the real-Debian fixture (${metrics.host.accelerator}, ${metrics.host.cpus} CPUs)`,
      ),
    );
    return 0;
  } finally {
    await server.stop();
    if (values.keep) console.log(`kept: ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
