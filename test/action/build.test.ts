import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { removeRunnerDirs, runMain, runPost } from '../support/action-runner.js';
import { writeFixtureConfig } from '../support/fixture.js';
import { leftovers } from '../support/leftovers.js';
import { fixtureInputs, isolatedConfig, removeWorkDirs, workDir } from './fixture-build.js';
import { builtStem } from '../support/run-cli.js';
import { startGlanceApi } from '../support/glance-api.js';
import { SigningKey } from '../support/signing-key.js';
import { metricsSchemaErrors } from '../support/metrics-schema.js';

after(() => {
  removeWorkDirs();
  removeRunnerDirs();
});

function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('the action on the fixture installer', () => {
  test('a build sets every output to what is on disk, folds the log by step, signs SHA256SUMS, uploads to Glance, and writes a job summary', async (t) => {
    const dir = workDir('build');
    const { config, image } = writeFixtureConfig(dir, { name: 'action-build', keys: { 'zero-free-space': 'discard' } });
    // The signing key and its passphrase come as the action's secret inputs; the image goes to a real glance-api.
    const passphrase = 'action signing passphrase';
    const key = new SigningKey('Action Builder', { passphrase });
    t.after(() => key.dispose());
    const armoured = join(key.home, 'secret.asc');
    key.exportSecret(armoured);
    const glance = await startGlanceApi(t);
    const run = await runMain(
      {
        ...fixtureInputs(dir, config, image),
        // Read after `config`, so it wins: keep the raw image beside the qcow2.
        'config-text': [
          `[${image}]`,
          'keep-raw = True',
          'upload_destinations = cloud',
          '[cloud]',
          'upload_type = glance',
          `upload_target = ${glance.endpoint}`,
          '',
        ].join('\n'),
        'log-file': 'true',
        'signing-key': readFileSync(armoured, 'utf8'),
        'signing-passphrase': passphrase,
      },
      { env: isolatedConfig(dir) },
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const stem = builtStem(run.stdout, image);
    const out = run.outputs;

    assert.equal(out.image, `${stem}.qcow2`);
    assert.equal(out['image-path'], join(dir, `${stem}.qcow2`));
    assert.equal(out.format, 'qcow2');
    const info = statSync(out['image-path']);
    assert.equal(out.size, String(info.size));
    assert.equal(out['disk-usage'], String(info.blocks * 512));
    assert.equal(out.sha256, sha256Of(out['image-path']));
    assert.equal(out['checksum-path'], `${out['image-path']}.sha256sum`);
    assert.equal(readFileSync(out['checksum-path'], 'utf8'), `${out.sha256}  ${out.image}\n`);
    execFileSync('sha256sum', ['-c', basename(out['checksum-path'])], { cwd: dir });
    execFileSync('qemu-img', ['check', out['image-path']]);
    assert.equal(out['raw-path'], join(dir, `${stem}.raw`), 'config-text (keep-raw) wins over the config file');
    assert.equal(statSync(out['raw-path']).size, 1 << 30);
    assert.equal(out['console-log'], join(dir, `${stem}.console.log`));
    assert.match(readFileSync(out['console-log'], 'utf8'), /fixture-installer/);
    assert.equal(out.accelerator, 'tcg');
    assert.deepEqual(JSON.parse(out.uploaded), [{ destination: 'cloud', target: glance.endpoint }]);
    // Glance holds the image, active, with the digests of the file published here.
    const [reference] = JSON.parse(out['upload-references']) as Array<{ destination: string; reference: string }>;
    const stored = (await glance.images()).find((entry) => entry.id === reference.reference);
    assert.equal(stored?.status, 'active');
    assert.equal(stored?.name, image);
    assert.equal(stored?.disk_format, 'qcow2');
    assert.equal(stored?.size, info.size);
    assert.equal(stored?.os_hash_value, createHash('sha512').update(readFileSync(out['image-path'])).digest('hex'));
    assert.equal(stored?.checksum, createHash('md5').update(readFileSync(out['image-path'])).digest('hex'));
    assert.equal(stored?.architecture, 'x86_64');
    assert.equal(stored?.os_distro, 'fixture');
    assert.ok(run.summary.includes(`uploaded and verified: <code>${reference.reference}</code>`), run.summary);
    // SHA256SUMS signed: gpgv with the public key accepts it; the key and passphrase are nowhere.
    assert.equal(out['checksums-signature-path'], join(dir, `${stem}.SHA256SUMS.gpg`));
    assert.equal(out['signing-fingerprint'], key.fingerprint);
    execFileSync('gpgv', ['--keyring', key.keyring, out['checksums-signature-path'], out['checksums-path']]);
    assert.ok(run.summary.includes(`by key <code>${key.fingerprint}</code>`), 'the summary names the signing key');
    const keyLines = readFileSync(armoured, 'utf8')
      .split('\n')
      .filter((line) => line.length >= 16 && !line.startsWith('-----') && !line.includes(':'));
    // The runner reads `::add-mask::` lines and never shows them; everything else is the log.
    const log = `${run.stdout}\n${run.stderr}`
      .split('\n')
      .filter((line) => !line.startsWith('::add-mask::'))
      .join('\n');
    const written = readdirSync(dir)
      .filter((name) => name.startsWith(stem) && !name.endsWith('.raw'))
      .map((name) => readFileSync(join(dir, name)).toString('latin1'));
    for (const text of [log, run.summary, ...written]) {
      assert.ok(!text.includes(passphrase), 'the passphrase is in the log or a file');
      for (const line of keyLines) assert.ok(!text.includes(line), 'a line of the secret key is in the log or a file');
    }
    assert.equal(out['cache-hit'], 'false');
    // The reports: the fixture system's three installed packages, and every published file in SHA256SUMS.
    assert.equal(out['manifest-path'], join(dir, `${stem}.manifest.json`));
    assert.equal(out['packages-path'], join(dir, `${stem}.packages`));
    assert.equal(out['sbom-path'], join(dir, `${stem}.cdx.json`));
    assert.equal(out.packages, '3');
    assert.equal(readFileSync(out['packages-path'], 'utf8').split('\n').length - 1, 3);
    assert.equal(out['checksums-path'], join(dir, `${stem}.SHA256SUMS`));
    assert.deepEqual(
      readFileSync(out['checksums-path'], 'utf8')
        .trimEnd()
        .split('\n')
        .map((line) => line.split('  ')[1]),
      [
        out.image,
        `${stem}.raw`,
        `${stem}.manifest.json`,
        `${stem}.packages`,
        `${stem}.cdx.json`,
        `${stem}.metrics.json`,
      ],
    );
    assert.equal(out['metrics-path'], join(dir, `${stem}.metrics.json`));
    assert.deepEqual(metricsSchemaErrors(JSON.parse(readFileSync(out['metrics-path'], 'utf8'))), []);
    assert.equal(out.changed, 'true');
    execFileSync('sha256sum', ['-c', basename(out['checksums-path'])], { cwd: dir });
    const generalized = JSON.parse(out.generalized) as Array<{ operation: string; path: string; done: string }>;
    assert.deepEqual(
      generalized.find((row) => row.path === '/etc/machine-id'),
      { operation: 'machine-id', path: '/etc/machine-id', found: 'file', done: 'emptied' },
    );
    assert.equal(out['generalized-left-out'], '0');
    assert.ok(run.summary.includes('<h3>Generalisation</h3>'), run.summary);
    assert.equal(out.arch, 'x86_64');
    assert.equal(out.firmware, 'bios');
    assert.deepEqual(JSON.parse(out['image-paths']), [out['image-path']]);
    // The layout found: the fixture's one ext4 partition on an MBR, mounted at / in the installed system.
    const layout = JSON.parse(out.layout) as {
      table: string;
      filesystems: Array<{ type: string; mountPoint?: string; removedLogs?: string[] }>;
    };
    assert.equal(layout.table, 'msdos');
    assert.deepEqual(
      layout.filesystems.map((fs) => [fs.type, fs.mountPoint]),
      [['ext4', '/']],
    );
    assert.ok(layout.filesystems[0].removedLogs?.includes('/var/log/installer'), out.layout);
    assert.deepEqual(Object.keys(out).sort(), [
      'accelerator',
      'arch',
      'cache-hit',
      'changed',
      'checksum-path',
      'checksums-path',
      'checksums-signature-path',
      'console-log',
      'disk-usage',
      'firmware',
      'format',
      'generalized',
      'generalized-left-out',
      'image',
      'image-path',
      'image-paths',
      'layout',
      'manifest-path',
      'metrics-path',
      'packages',
      'packages-path',
      'raw-path',
      'sbom-path',
      'sha256',
      'signing-fingerprint',
      'size',
      'upload-references',
      'uploaded',
    ]);

    // The log: a group per step, every line timed, the log file written too (log-file input).
    for (const title of [
      'Fetch the installer kernel and initrd (fetch)',
      'Run the unattended installer (install)',
      'Compute the SHA-256 (checksum)',
    ]) {
      assert.ok(run.stdout.includes(`::group::${title}\n`), `no group for ${title}`);
    }
    assert.equal(
      run.stdout.split('\n').filter((line) => line.startsWith('::group::')).length,
      run.stdout.split('\n').filter((line) => line === '::endgroup::').length,
    );
    assert.match(run.stdout, /^\[\d\d:\d\d:\d\d\] \$ virt-install --connect qemu:\/\/\/system --virt-type qemu /m);
    assert.deepEqual(
      run.annotations.filter((a) => a.level === 'error'),
      [],
    );
    assert.match(readFileSync(join(dir, `${stem}.log`), 'utf8'), /INFO: == install: Run the unattended installer/);

    // The job summary: the table of results and every step's duration.
    assert.ok(run.summary.includes(`<tr><td>Image</td><td><code>${out.image}</code></td></tr>`), run.summary);
    assert.ok(run.summary.includes(`<tr><td>SHA-256</td><td><code>${out.sha256}</code></td></tr>`));
    assert.ok(run.summary.includes('<tr><td>Format</td><td>qcow2</td></tr>'));
    assert.match(
      run.summary,
      new RegExp(`<tr><td>Size</td><td>[0-9.]+ MiB \\(${out.size} bytes; [0-9.]+ MiB on disk\\)</td></tr>`),
    );
    assert.ok(run.summary.includes('<tr><td>Accelerator</td><td>tcg</td></tr>'));
    assert.ok(run.summary.includes('<tr><td>Distribution</td><td>Fixture Linux 1</td></tr>'), run.summary);
    assert.ok(run.summary.includes('<tr><td>Kernel</td><td><code>6.1.0-fixture-amd64</code></td></tr>'));
    assert.ok(run.summary.includes(`<tr><td>Checksums</td><td><code>${stem}.SHA256SUMS</code>, signed:`));
    for (const step of ['fetch', 'disk', 'install', 'scrub', 'convert', 'checksum', 'reports', 'publish', 'upload']) {
      assert.match(
        run.summary,
        new RegExp(`<tr><td>${step}</td><td>[^<]+</td><td>(?:[0-9.]+ s|[0-9]+m[0-9]+s)</td><td>done</td></tr>`),
      );
    }
    assert.match(run.summary, /<h3>Uploads<\/h3>/);

    // Nothing left to undo: the post step says so and does nothing.
    assert.equal(run.state['pending-resources'], '[]');
    const post = await runPost(fixtureInputs(dir, config, image), run.state);
    assert.equal(post.code, 0);
    assert.match(post.stdout, /Nothing left to clean up\./);
    assert.deepEqual(leftovers(dir, stem), []);
  });
});

describe('a failed build', () => {
  test('fails the step with one annotation naming the step and quoting the console, summarises it, and leaves nothing behind', async () => {
    const dir = workDir('failed');
    const { config, image } = writeFixtureConfig(dir, { name: 'action-failed', directives: { hang: 1 } });
    // The annotation is the point, not the limit: it leaves a busy machine room to boot the fixture's
    // kernel under TCG to its first line.
    const run = await runMain(
      { ...fixtureInputs(dir, config, image), 'install-timeout': '90s' },
      { env: isolatedConfig(dir) },
    );
    assert.equal(run.code, 1);
    const errors = run.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    assert.equal(errors.length, 1, run.stdout);
    assert.match(
      errors[0],
      /^The install step \(Run the unattended installer\) failed: the installer did not finish within 1m30s \(install-timeout\); the VM was stopped\nThe console's last screen:\n(.*\n)*.*\| .*fixture-installer/,
    );
    assert.match(
      run.stdout,
      /::group::Run the unattended installer \(install\)\n(.*\n)*\[\d\d:\d\d:\d\d\] install FAILED after \d+m\d\ds\n::endgroup::/,
    );
    assert.deepEqual(run.outputs, {});
    assert.match(run.summary, /Image action-failed failed/);
    assert.match(
      run.summary,
      /<tr><td>install<\/td><td>Run the unattended installer<\/td><td>[^<]+<\/td><td><strong>failed<\/strong><\/td><\/tr>/,
    );
    assert.equal(run.state['pending-resources'], '[]');
    const stem = builtStem(run.stdout, image);
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith(stem) && /\.(qcow2|raw|sha256sum)$/.test(name)),
      [],
    );
    assert.deepEqual(leftovers(dir, stem), []);
  });
});

describe('bad input', () => {
  test('fails the step with a message naming the input, before anything is installed or created', async () => {
    const dir = workDir('badinput');
    const { config, image } = writeFixtureConfig(dir, { name: 'action-badinput' });
    const env = isolatedConfig(dir);
    const before = readdirSync(dir).sort();
    const cases: Array<[Record<string, string>, string]> = [
      [{ format: 'vdi' }, "Input 'format': 'vdi' is not one of raw, qcow2, vmdk, vhdx, vhd."],
      [
        { upload: 'yes' },
        "Input 'upload': 'yes' is not a boolean; use true or false (YAML 1.2 core schema: true, True, TRUE, false, False, FALSE).",
      ],
      [
        { 'image-size': 'huge' },
        "Input 'image-size': 'huge' is not a size; use a whole number with a unit: binary '512 MiB', '4 GiB', SI '2 GB', or legacy '2G' (= 2 GiB).",
      ],
      [
        { image: 'No-Such-Image' },
        `No section 'No-Such-Image' defined in the configuration. Images that exist: ${image}.`,
      ],
      [
        { 'config-text': `[${image}]\nformat = vdi\n` },
        `[${image}] format: 'vdi' is not one of raw, qcow2, vmdk, vhdx, vhd.`,
      ],
    ];
    for (const [given, message] of cases) {
      // install-dependencies: true — and yet nothing is installed: the input is checked first.
      const run = await runMain(
        { ...fixtureInputs(dir, config, image), 'install-dependencies': 'true', ...given },
        { env },
      );
      assert.equal(run.code, 1, JSON.stringify(given));
      const errors = run.annotations.filter((a) => a.level === 'error').map((a) => a.message);
      assert.equal(errors.length, 1, run.stdout);
      assert.ok(errors[0].endsWith(message), `${errors[0]}\n  should end with\n${message}`);
      assert.doesNotMatch(run.stdout, /\$ (apt-get|virt-install|qemu-img)/);
      assert.deepEqual(run.outputs, {});
      assert.deepEqual(run.state, {}, 'nothing was registered for cleanup');
    }
    assert.deepEqual(readdirSync(dir).sort(), before, 'no file, cache folder or log was created');
  });

  test('an image the configuration does not define lists the shipped ones (the bundle finds data/)', async () => {
    const run = await runMain({ image: 'No-Such-Image', 'install-dependencies': 'false' });
    assert.equal(run.code, 1);
    assert.match(
      run.annotations[0]?.message ?? '',
      /^No section 'No-Such-Image' defined in the configuration\. Images that exist: .*Debian-12-server/,
    );
  });
});
