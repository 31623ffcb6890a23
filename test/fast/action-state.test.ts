import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { State } from '../../src/action/constants.js';
import { readPendingResources, savePendingResources } from '../../src/action/pending-resources.js';
import { renderSummary } from '../../src/action/summary.js';
import { RecordingHost } from '../../src/host/recording-host.js';
import type { BuildResult } from '../../src/pipeline/build.js';
import type { Resource } from '../../src/context/undo-list.js';
import { undoResource } from '../../src/pipeline/resources.js';
import { RecordingReporter } from '../support/build-context.js';

const work = mkdtempSync(join(tmpdir(), 'action-state-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The value the runner hands the post step: the last `name<<delimiter` block of GITHUB_STATE. */
function stateFromFile(path: string, name: string): string {
  const blocks = [...readFileSync(path, 'utf8').matchAll(/^([^<\n]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)];
  const last = blocks.filter((block) => block[1] === name).pop();
  assert.ok(last, `no ${name} in GITHUB_STATE`);
  return last[3];
}

const PENDING: Resource[] = [
  { kind: 'path', path: '/images/.img.partial-abc123' },
  { kind: 'acl', path: '/root', entry: 'u:libvirt-qemu' },
  { kind: 'domain', uri: 'qemu:///system', name: 'img-2026-01-01-abc123' },
  { kind: 'appliance', disk: '/images/.img.partial-abc123/img.raw' },
  { kind: 'appliance', disk: '/images/.img.partial-abc123/img.raw', pid: '4242' },
];

describe("the action's saved state of what is left to undo", () => {
  test('survives the round trip through GITHUB_STATE, the last save winning', () => {
    const file = join(work, 'state');
    writeFileSync(file, '');
    const saved = process.env.GITHUB_STATE;
    process.env.GITHUB_STATE = file;
    try {
      savePendingResources(PENDING.slice(0, 2));
      savePendingResources(PENDING);
    } finally {
      process.env.GITHUB_STATE = saved;
    }
    assert.deepEqual(readPendingResources(stateFromFile(file, State.PendingResources)), {
      resources: PENDING,
      unreadable: [],
    });
  });

  test('what it cannot read is reported, not guessed at', () => {
    const text = JSON.stringify([PENDING[0], { kind: 'domain', name: 'no-uri' }, { kind: 'rm -rf /', path: '/' }]);
    const { resources, unreadable } = readPendingResources(text);
    assert.deepEqual(resources, [PENDING[0]]);
    assert.equal(unreadable.length, 2);
    assert.deepEqual(readPendingResources('{not json'), { resources: [], unreadable: ['{not json'] });
  });

  test("a UEFI domain's NVRAM is read back only as the file libvirt names after the domain", () => {
    const nvram = {
      kind: 'domain',
      uri: 'qemu:///system',
      name: 'img-1',
      nvram: '/var/lib/libvirt/qemu/nvram/img-1_VARS.fd',
    };
    const elsewhere = { ...nvram, nvram: '/etc/passwd' };
    const climbing = {
      ...nvram,
      name: '../../../../etc/x',
      nvram: '/var/lib/libvirt/qemu/nvram/../../../../etc/x_VARS.fd',
    };
    const { resources, unreadable } = readPendingResources(JSON.stringify([nvram, elsewhere, climbing]));
    assert.deepEqual(resources, [nvram]);
    assert.equal(unreadable.length, 2);
  });

  test('the post step undefines a UEFI domain with its NVRAM, and removes the file a transient domain left', async () => {
    const host = new RecordingHost(
      new RecordingReporter(),
      {
        answers: [
          { match: /^virsh .* domstate /, result: { exitCode: 1, lastLines: ["error: failed to get domain 'img-1'"] } },
        ],
      },
      0,
    );
    await undoResource(host, {
      kind: 'domain',
      uri: 'qemu:///system',
      name: 'img-1',
      nvram: '/var/lib/libvirt/qemu/nvram/img-1_VARS.fd',
    });
    assert.deepEqual(host.commands(), ['virsh -c qemu:///system domstate img-1']);
    assert.deepEqual(host.fileOperations('remove'), [['/var/lib/libvirt/qemu/nvram/img-1_VARS.fd']]);
  });

  test('the post step undoes each kind with the commands a person would run', async () => {
    // The appliance's qemu (a child of guestfish 4242, naming the disk) outlives guestfish until it is killed.
    let qemuAlive = true;
    const host = new RecordingHost(
      new RecordingReporter(),
      {
        answers: [
          { match: /^virsh .* domstate /, result: { stdout: 'running\n' } },
          {
            match: /^ps /,
            respond: () => ({
              stdout: qemuAlive
                ? '4243 4242 qemu-system-x86_64 -drive file=/images/.img.partial-abc123/img.raw,format=raw\n'
                : '',
            }),
          },
          {
            match: /^kill -TERM 4243$/,
            respond: () => {
              qemuAlive = false;
              return {};
            },
          },
        ],
      },
      0,
    );
    for (const resource of [...PENDING].reverse()) {
      if (resource.kind === 'domain') {
        // domstate says running until undefine: the check after it must find the domain gone.
        await assert.rejects(undoResource(host, resource), /libvirt domain img-2026-01-01-abc123 is still defined/);
      } else {
        await undoResource(host, resource);
      }
    }
    assert.deepEqual(host.commands(), [
      // The appliance's shell listens to no one else: its processes are ended, then looked for again.
      'ps -eo pid=,ppid=,args=',
      'kill -TERM 4243',
      'ps -eo pid=,ppid=,args=',
      'ps -eo pid=,ppid=,args=',
      'virsh -c qemu:///system domstate img-2026-01-01-abc123',
      'virsh -c qemu:///system destroy img-2026-01-01-abc123',
      'virsh -c qemu:///system undefine img-2026-01-01-abc123',
      'virsh -c qemu:///system domstate img-2026-01-01-abc123',
      'setfacl -x u:libvirt-qemu /root',
    ]);
    assert.deepEqual(host.fileOperations('remove'), [['/images/.img.partial-abc123']]);
  });
});

describe('the job summary', () => {
  const result = {
    artifacts: [
      {
        role: 'image',
        format: 'qcow2',
        final: '/images/img-2026-01-01.qcow2',
        sha256: 'ab'.repeat(32),
        size: 734003200,
      },
      { role: 'image-checksum', format: 'qcow2', final: '/images/img-2026-01-01.qcow2.sha256sum' },
      { role: 'image', format: 'vmdk', final: '/images/img-2026-01-01.vmdk', sha256: 'cd'.repeat(32), size: 524288000 },
      { role: 'image-checksum', format: 'vmdk', final: '/images/img-2026-01-01.vmdk.sha256sum' },
      { role: 'manifest', final: '/images/img-2026-01-01.manifest.json' },
      { role: 'packages', final: '/images/img-2026-01-01.packages' },
      { role: 'sbom', final: '/images/img-2026-01-01.cdx.json' },
      { role: 'changes', final: '/images/img-2026-01-01.changes' },
      { role: 'sums', final: '/images/img-2026-01-01.SHA256SUMS' },
      { role: 'console-log', final: '/images/img-2026-01-01.console.log' },
    ],
    diskUsage: 734003200,
    changes: {
      previous: {
        source: 'old.json',
        image: 'img-2025-12-01.qcow2',
        date: '2025-12-01',
        packageCount: 311,
        imageSize: 733003200,
      },
      current: { image: 'img-2026-01-01.qcow2', packageCount: 312, imageSize: 734003200 },
      added: [{ name: 'curl', version: '7.88.1-10+deb12u12', architecture: 'amd64' }],
      removed: [],
      upgraded: [{ name: 'libc6', architecture: 'amd64', from: '2.36-9+deb12u4', to: '2.36-9+deb12u10' }],
      downgraded: [],
    },
    packageCount: 312,
    distribution: 'Debian GNU/Linux 12 (bookworm)',
    kernel: '6.1.0-18-amd64',
    accelerator: 'kvm',
    arch: 'x86_64',
    firmware: 'uefi',
    removedLogs: [],
    generalized: [
      { operation: 'machine-id', path: '/etc/machine-id', found: 'file', done: 'emptied' },
      { operation: 'ssh-hostkeys', path: '/etc/ssh/ssh_host_<ed25519>_key', found: 'file', done: 'removed' },
    ],
    zeroing: 'discard',
    uploads: [
      {
        destination: 'mirror',
        target: 'rsync://user@host/images/',
        ok: false,
        error: 'rsync <exit 5>',
        attempts: 4,
        durationMs: 1500,
      },
    ],
    cacheHit: true,
    installer: { dir: '/cache', files: {}, downloaded: false },
    bootSeconds: 42.25,
    cloudInitFinished: true,
    steps: [],
    changed: true,
    history: [],
  } as unknown as BuildResult;

  test('shows the image, its checksum, the firmware, the boot test and each upload, with HTML escaped', () => {
    const html = renderSummary({ image: 'img<1>', steps: [{ step: 'install', durationMs: 61_000, ok: true }], result });
    assert.match(html, /<h2>✅ Image img&lt;1&gt;<\/h2>/);
    assert.match(html, new RegExp(`<td>SHA-256</td><td><code>${'ab'.repeat(32)}</code></td>`));
    assert.match(html, /<td>Boot test<\/td><td>came up in 42\.3 s, cloud-init finished<\/td>/);
    assert.match(html, /<td>Distribution<\/td><td>Debian GNU\/Linux 12 \(bookworm\)<\/td>/);
    assert.match(html, /<td>Kernel<\/td><td><code>6\.1\.0-18-amd64<\/code><\/td>/);
    assert.match(
      html,
      /<td>Packages<\/td><td>312 \(<code>img-2026-01-01\.manifest\.json<\/code>, SBOM <code>img-2026-01-01\.cdx\.json<\/code>\)<\/td>/,
    );
    assert.match(html, /<h3>Generalisation<\/h3>\n<table>\n<tr><th>Operation<\/th><th>Done<\/th><th>Paths<\/th><\/tr>/);
    assert.match(html, /<tr><td>ssh-hostkeys<\/td><td>removed<\/td><td>1<\/td><\/tr>/);
    assert.match(
      html,
      /<details><summary>Each path \(2\)<\/summary>\n\n<table>\n<tr><th>Operation<\/th><th>Path<\/th>/,
    );
    assert.match(html, /<tr><td>machine-id<\/td><td><code>\/etc\/machine-id<\/code><\/td><td>emptied<\/td><\/tr>/);
    assert.match(html, /<code>\/etc\/ssh\/ssh_host_&lt;ed25519&gt;_key<\/code>/);
    assert.match(html, /<td>Firmware<\/td><td>UEFI \(OVMF, Secure Boot off\)<\/td>/);
    assert.match(html, /<td>Architecture<\/td><td>x86_64<\/td>/);
    assert.match(html, /<td>Checksums<\/td><td><code>img-2026-01-01\.SHA256SUMS<\/code><\/td>/);
    assert.match(
      html,
      /<td>mirror<\/td><td><code>rsync:\/\/user@host\/images\/<\/code><\/td><td>failed: rsync &lt;exit 5&gt;<\/td><td>4<\/td>/,
    );
    assert.match(html, /<td>install<\/td><td>Run the unattended installer<\/td><td>1m01s<\/td><td>done<\/td>/);
    assert.match(html, /<td>Format<\/td><td>qcow2, vmdk<\/td>/);
    assert.match(
      html,
      /<td>Image \(vmdk\)<\/td><td><code>\/images\/img-2026-01-01\.vmdk<\/code>, 500\.0 MiB, SHA-256 <code>(cd){32}<\/code><\/td>/,
    );
    assert.match(
      html,
      /<h3>Changes since img-2025-12-01\.qcow2<\/h3>\n<p>1 added, 0 removed, 1 upgraded, 0 downgraded; image size 699\.0 MiB -&gt; 700\.0 MiB: \+976\.6 KiB/,
    );
    assert.match(
      html,
      /<tr><td>added<\/td><td><code>curl<\/code><\/td><td>amd64<\/td><td><\/td><td><code>7\.88\.1-10\+deb12u12<\/code><\/td><\/tr>/,
    );
    assert.match(
      html,
      /<tr><td>upgraded<\/td><td><code>libc6<\/code><\/td><td>amd64<\/td><td><code>2\.36-9\+deb12u4<\/code><\/td><td><code>2\.36-9\+deb12u10<\/code><\/td><\/tr>/,
    );
  });

  test('a failure names its step', () => {
    const html = renderSummary({
      image: 'img',
      steps: [],
      failure: { step: 'scrub', message: 'Expected exactly one partition' },
    });
    assert.match(html, /❌ Image img failed/);
    assert.match(
      html,
      /The scrub step \(Read the installed system, remove installer logs, generalise, zero free space\) failed:<\/p>\n\n<pre>Expected exactly one partition<\/pre>/,
    );
  });
});
