import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeWorkDir, writeFixtureConfig } from '../support/fixture.js';
import { RPM_PACKAGES, rpmDatabase } from '../support/rpm-database.js';
import { diskContains, inspectImage, readText } from '../support/image-files.js';
import { domainRunning, virtInstallDomain } from '../support/domain-state.js';
import { leftovers } from '../support/leftovers.js';
import { builtStem, runCli } from '../support/run-cli.js';
import { startRsyncDaemon } from '../support/rsync-daemon.js';
import { metricsSchemaErrors } from '../support/metrics-schema.js';
import { formatDuration } from '../../src/common/units.js';
import type { BuildMetrics } from '../../src/supply-chain/metrics.js';

const INSTALLER_LOGS = [
  'root/anaconda-ks.cfg',
  'root/install.log',
  'root/install.log.syslog',
  'var/log/anaconda',
  'var/log/installer',
  'var/log/YaST2',
  'var/adm/autoinstall',
  'var/lib/YaST2',
];

/** Lines only the fixture's installer logs hold (not the rest of the system it writes). */
const LOG_MARKERS = [
  'anaconda: installation complete',
  'autoinstall: fixture installer log',
  'finish-install: installation complete',
];

/**
 * The manifest, package list and SBOM of the fixture's system (its dpkg
 * status: three installed packages, one only configured), and a checksum
 * list that sha256sum -c accepts in the output folder.
 */
async function assertReports(
  dir: string,
  stem: string,
  formats: string[],
  answer: string,
  extraPackage?: string,
): Promise<void> {
  const format = formats[0];
  const manifest = JSON.parse(readFileSync(join(dir, `${stem}.manifest.json`), 'utf8')) as {
    distribution: { id: string; release: string };
    kernel: string;
    packages: Array<{ name: string; version: string; architecture: string; source: string }>;
  };
  assert.deepEqual(manifest.distribution, { id: 'fixture', release: '1', codename: '', name: 'Fixture Linux 1' });
  assert.equal(manifest.kernel, '6.1.0-fixture-amd64');
  assert.deepEqual(
    manifest.packages.map((entry) => [entry.name, entry.version, entry.architecture, entry.source]),
    [
      ['fixture-base', '1.0-1', 'amd64', 'fixture-base'],
      ...(extraPackage ? [[extraPackage, '1.0-1', 'all', extraPackage]] : []),
      ['fixture-hello', '1:0.9-2', 'all', 'fixture-hello'],
      ['libfixture1', '2.3-1+b1', 'amd64', 'fixture-libs'],
    ],
  );
  assert.equal(
    readFileSync(join(dir, `${stem}.packages`), 'utf8'),
    `fixture-base 1.0-1\n${extraPackage ? `${extraPackage} 1.0-1\n` : ''}fixture-hello 1:0.9-2\nlibfixture1 2.3-1+b1\n`,
  );
  const sbom = readFileSync(join(dir, `${stem}.cdx.json`), 'utf8');
  assert.equal(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(sbom), null);
  const bom = JSON.parse(sbom) as {
    metadata: { component: { name: string; hashes: Array<{ content: string }> } };
    components: Array<{ name: string; scope?: string; hashes?: Array<{ content: string }> }>;
  };
  const imageSum = readFileSync(join(dir, `${stem}.${format}.sha256sum`), 'utf8').split(' ')[0];
  assert.equal(bom.metadata.component.name, `${stem}.${format}`);
  assert.equal(bom.metadata.component.hashes[0].content, imageSum);
  const inputs = bom.components.filter((component) => component.scope === 'excluded');
  assert.equal(inputs.length, 3, 'the installer kernel, initrd and the answer file');
  const answerSum = createHash('sha256').update(readFileSync(answer)).digest('hex');
  assert.deepEqual(inputs.find((input) => input.name === answer)?.hashes?.[0].content, answerSum);
  const sums = readFileSync(join(dir, `${stem}.SHA256SUMS`), 'utf8');
  assert.deepEqual(
    sums
      .trimEnd()
      .split('\n')
      .map((line) => line.split('  ')[1]),
    [
      ...formats.map((each) => `${stem}.${each}`),
      `${stem}.manifest.json`,
      `${stem}.packages`,
      `${stem}.cdx.json`,
      ...(existsSync(join(dir, `${stem}.changes`)) ? [`${stem}.changes`] : []),
      `${stem}.metrics.json`,
    ],
  );
  execFileSync('sha256sum', ['-c', `${stem}.SHA256SUMS`], { cwd: dir });
}

/**
 * The free space of a fixture image that wrote `dataMiB` of garbage and deleted it was zeroed: the
 * qcow2 is smaller than half of it, no removed log's text is on the disk, and the system is intact.
 */
function assertZeroed(qcow2: string, dataMiB: number): void {
  assert.ok(
    statSync(qcow2).size < (dataMiB / 2) * 1024 * 1024,
    `qcow2 is ${statSync(qcow2).size} bytes: free space was not zeroed`,
  );
  for (const marker of LOG_MARKERS)
    assert.ok(!diskContains(qcow2, marker), `'${marker}' of a removed log is still on the disk`);
  inspectImage(qcow2, (root) => assert.match(readText(root, 'etc/os-release') ?? '', /Fixture Linux/));
}

const workDirs: string[] = [];
function workDir(name: string): string {
  const dir = makeWorkDir(name);
  workDirs.push(dir);
  return dir;
}

after(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

interface QemuImgInfo {
  format: string;
  'virtual-size': number;
  'format-specific'?: { data?: { 'create-type'?: string } };
}

/** `qemu-img info`, probing the format, or of the given format (a fixed VHD has only a footer: it probes as raw). */
function qemuImgInfo(path: string, format?: string): QemuImgInfo {
  const args = ['info', '--output=json', ...(format ? ['-f', format] : []), path];
  return JSON.parse(execFileSync('qemu-img', args, { encoding: 'utf8' })) as QemuImgInfo;
}

/** The first build's manifest: the raw build compares with it (a second build would cost CI time). */
let firstManifest: string | undefined;
let firstMetrics: string | undefined;
let rawManifest: string | undefined;
/** The raw build's answer file directives, which the unchanged build repeats. */
const UNCHANGED_DIRECTIVES = { 'data-mb': 100, package: 'fixture-extra' };

/**
 * The build's metrics: valid by docs/metrics.schema.json, the build's own
 * figures (the install's seconds are the install step's in the log), the
 * images' sizes as the files are.
 */
function assertMetrics(dir: string, stem: string, formats: string[], stderr: string): BuildMetrics {
  const metrics = JSON.parse(readFileSync(join(dir, `${stem}.metrics.json`), 'utf8')) as BuildMetrics;
  assert.deepEqual(metricsSchemaErrors(metrics), []);
  const install = metrics.steps.find((entry) => entry.step === 'install');
  assert.ok(install, 'the install step is in the metrics');
  const logged = /== install done after (.+)$/m.exec(stderr)?.[1];
  assert.equal(formatDuration(install.seconds * 1000), logged, 'the install step as the log says');
  const phases = [metrics.install.bootSeconds, metrics.install.runningSeconds, metrics.install.powerOffSeconds];
  assert.ok(
    phases.every((seconds) => seconds !== null),
    'the fixture prints on its console',
  );
  assert.ok((phases as number[]).reduce((sum, seconds) => sum + seconds, 0) <= install.seconds + 1);
  assert.deepEqual(
    metrics.images.map((image) => [image.format, image.size]),
    formats.map((format) => [format, statSync(join(dir, `${stem}.${format}`)).size]),
  );
  assert.ok(metrics.scrub.allocatedBefore > 0 && metrics.scrub.applianceLaunchSeconds > 0);
  assert.equal(metrics.host.accelerator, 'tcg');
  for (const [tool, version] of Object.entries(metrics.host.versions)) assert.notEqual(version, 'unknown', tool);
  return metrics;
}

/** 1 GB (10^9 bytes) is not a whole number of MiB: with a VHD among the formats, the disk is rounded up. */
const ALIGNED_SIZE = Math.ceil(1e9 / 2 ** 20) * 2 ** 20;

describe('a build on the fixture installer', () => {
  test('produces qcow2, vmdk, vhdx and vhd images from one install that check, with checksums sha256sum accepts, logs removed, system intact, free space zeroed, nothing left behind', async () => {
    const dir = workDir('qcow2');
    const dataMiB = 200;
    const formats = ['qcow2', 'vmdk', 'vhdx', 'vhd'];
    const { config, image, answer } = writeFixtureConfig(dir, {
      directives: { 'data-mb': dataMiB },
      keys: { 'zero-free-space': 'zerofree', format: formats.join(', '), 'image-size': '1000 MB' },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    const stem = builtStem(run.stderr, image);
    const qcow2 = join(dir, `${stem}.qcow2`);
    assert.equal((run.stderr.match(/Calling (sudo -n )?virt-install/g) ?? []).length, 1, 'one install');

    for (const format of formats) {
      const path = join(dir, `${stem}.${format}`);
      const info = qemuImgInfo(path, format === 'vhd' ? 'vpc' : undefined);
      assert.equal(info.format, format === 'vhd' ? 'vpc' : format, path);
      assert.equal(info['virtual-size'], ALIGNED_SIZE, `${format}: the disk's size, rounded up to 1 MiB`);
      // qemu-img check knows qcow2, vmdk and vhdx (not vpc).
      if (format !== 'vhd') execFileSync('qemu-img', ['check', '-f', info.format, path]);
      assert.equal(readFileSync(`${path}.sha256sum`, 'utf8').split(/\s+/)[1], `${stem}.${format}`);
      execFileSync('sha256sum', ['-c', `${stem}.${format}.sha256sum`], { cwd: dir });
      // The same disk, byte for byte, in every format.
      if (format !== 'qcow2') execFileSync('qemu-img', ['compare', '-f', 'qcow2', '-F', info.format, qcow2, path]);
    }
    assert.equal(qemuImgInfo(join(dir, `${stem}.vmdk`))['format-specific']?.data?.['create-type'], 'streamOptimized');
    // A fixed VHD: the whole disk, then the 512-byte footer.
    assert.equal(statSync(join(dir, `${stem}.vhd`)).size, ALIGNED_SIZE + 512);
    assert.ok(!existsSync(join(dir, `${stem}.raw`)), 'the raw image is removed unless keep-raw');
    await assertReports(dir, stem, formats, answer);
    firstManifest = join(dir, `${stem}.manifest.json`);
    assertMetrics(dir, stem, formats, run.stderr);
    firstMetrics = join(dir, `${stem}.metrics.json`);

    // The installer wrote and deleted dataMiB of random data: zeroed free space compresses away.
    const size = statSync(qcow2).size;
    assert.ok(size < (dataMiB / 4) * 1024 * 1024, `qcow2 is ${size} bytes: free space was not zeroed`);

    inspectImage(qcow2, (root) => {
      for (const log of INSTALLER_LOGS) assert.ok(!existsSync(join(root, log)), `${log} was not removed`);
      assert.match(readText(root, 'etc/os-release') ?? '', /Fixture Linux/);
      assert.ok(existsSync(join(root, 'usr/bin/hello')));
      assert.ok(existsSync(join(root, 'home/user/notes.txt')));
      assert.ok(existsSync(join(root, 'var/log')), 'only the installer logs go, not /var/log');
      // Generalised (generalize = yes by default): safe to clone.
      assert.equal(readText(root, 'etc/machine-id'), '');
      assert.deepEqual(
        readdirSync(join(root, 'etc/ssh')).filter((name) => name.startsWith('ssh_host_')),
        [],
      );
      assert.ok(!existsSync(join(root, 'root/.bash_history')), "root's shell history was not removed");
      assert.ok(existsSync(join(root, 'tmp')) && existsSync(join(root, 'var/tmp')), '/tmp itself stays');
    });
    assert.match(run.stderr, /Generalised: \d+ paths\n.*INFO: {3}machine-id +\/etc\/machine-id: emptied/);
    for (const marker of LOG_MARKERS)
      assert.ok(!diskContains(qcow2, marker), `'${marker}' of a removed log is still on the disk`);
    assert.match(run.stderr, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} image-factory \[\d+\] INFO: /m);
    assert.match(run.stderr, /Removing \/var\/log\/installer/);
    assert.ok(existsSync(join(dir, `${stem}.console.log`)));
    assert.match(readFileSync(join(dir, `${stem}.console.log`), 'utf8'), /fixture-installer/);
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('a raw build by discard keeps the image sparse, prints the installer logs when asked, checks the host with --install-dependencies, and reports the one package more than the first build: skip-unchanged publishes and uploads it, and its metrics are compared with the first build', async (t) => {
    assert.ok(firstManifest && firstMetrics, 'the qcow2 build above ran first: its manifest is the previous one');
    const dir = workDir('raw');
    const uploaded = join(dir, 'daemon-images');
    mkdirSync(uploaded);
    const daemon = await startRsyncDaemon(t, { images: { path: uploaded } });
    const { config, image, answer } = writeFixtureConfig(dir, {
      directives: UNCHANGED_DIRECTIVES,
      keys: { format: 'raw', 'zero-free-space': 'discard', upload_destinations: 'daemon', 'skip-unchanged': 'yes' },
      extra: `[daemon]\nupload_type = rsync\nupload_target = ${daemon.url('images')}\n`,
    });
    const run = await runCli(
      [
        image,
        '--installer-logs',
        '--install-dependencies',
        '--previous-manifest',
        firstManifest,
        '--previous-metrics',
        firstMetrics,
      ],
      { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } },
    );
    assert.equal(run.code, 0, run.stderr);
    rawManifest = join(dir, `${builtStem(run.stderr, image)}.manifest.json`);
    const stem = builtStem(run.stderr, image);
    const raw = join(dir, `${stem}.raw`);
    const changes = readFileSync(join(dir, `${stem}.changes`), 'utf8');
    const previousImage = basename(firstManifest).replace(/\.manifest\.json$/, '.qcow2');
    const [header, added] = changes.split('\n\n');
    assert.equal(
      header,
      [
        `Changes of ${stem}.raw since ${previousImage} (${previousImage.slice(-16, -6)})`,
        `Previous manifest: ${firstManifest}`,
        header.split('\n')[2],
        'Packages: 3 -> 4 (1 added, 0 removed, 0 upgraded, 0 downgraded)',
      ].join('\n'),
    );
    assert.match(
      header.split('\n')[2],
      /^Image size: .* -> 1\.0 GiB: \+[\d.]+ MiB \(\+[\d.]+ %\) \(\d+ -> 1073741824 bytes\)$/,
    );
    assert.equal(added, 'Added:\n  fixture-extra all 1.0-1\n', 'exactly the one package added');
    assert.match(run.stderr, /Changes since .*: 1 added, 0 removed, 0 upgraded, 0 downgraded\n.*Image size: /);
    await assertReports(dir, stem, ['raw'], answer, 'fixture-extra');
    const stats = statSync(raw);
    assert.equal(stats.size, 1 << 30);
    assert.ok(stats.blocks * 512 < 64 << 20, `raw image takes ${stats.blocks * 512} bytes on disk: not sparse`);
    execFileSync('sha256sum', ['-c', `${stem}.raw.sha256sum`], { cwd: dir });
    // Discarding right after removing the logs must still clear their blocks.
    for (const marker of LOG_MARKERS)
      assert.ok(!diskContains(raw, marker), `'${marker}' of a removed log is still on the disk`);
    assert.match(run.stderr, /All the programs a build needs are installed\./);
    assert.match(run.stderr, /libvirt answers at qemu:\/\/\/system\./);
    assert.match(run.stderr, /free space discarded/);
    assert.match(run.stderr, /Content of \/var\/log\/installer\/syslog:/);
    assert.match(run.stderr, /console: fixture-installer/);
    assert.match(run.stderr, /skip-unchanged: publishing: 1 packages differ and the inputs answer-file differ since /);
    assert.ok(readdirSync(uploaded).includes(`${stem}.metrics.json`), 'published and uploaded');
    const metrics = assertMetrics(dir, stem, ['raw'], run.stderr);
    assert.equal(metrics.packages, 4);
    const first = basename(firstMetrics).replace(/\.metrics\.json$/, '.qcow2');
    assert.match(
      run.stderr,
      new RegExp(
        `Metrics compared with ${first} \\(\\d{4}-\\d\\d-\\d\\d\\):\n[\\s\\S]*?  install +[\\d.]+ s +was [\\d.]+ s\n`,
      ),
    );
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('skip-unchanged: a build of the same inputs as the raw build above, with the same packages, publishes and uploads nothing', async (t) => {
    assert.ok(rawManifest, 'the raw build above ran first: its manifest is the previous one');
    const dir = workDir('unchanged');
    const uploaded = join(dir, 'daemon-images');
    mkdirSync(uploaded);
    const daemon = await startRsyncDaemon(t, { images: { path: uploaded } });
    // The same answer file's content (its directives) and installer files: the same inputs.
    const { config, image } = writeFixtureConfig(dir, {
      directives: UNCHANGED_DIRECTIVES,
      keys: { format: 'raw', upload_destinations: 'daemon', 'skip-unchanged': 'yes' },
      extra: `[daemon]\nupload_type = rsync\nupload_target = ${daemon.url('images')}\n`,
    });
    const run = await runCli([image, '--previous-manifest', rawManifest], {
      cwd: dir,
      env: { IMAGE_FACTORY_CONFIG: config },
    });
    assert.equal(run.code, 0, run.stderr);
    const stem = builtStem(run.stderr, image);
    assert.equal(
      (run.stderr.match(/Unchanged \(skip-unchanged\): the same 4 packages and 3 inputs as /g) ?? []).length,
      1,
    );
    assert.match(run.stderr, /Build finished: unchanged, nothing published or uploaded/);
    assert.deepEqual(readdirSync(uploaded), [], 'nothing uploaded');
    // Nothing published: only the console log, which is written in place as the installer runs.
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.includes(stem)),
      [`${stem}.console.log`],
    );
    assert.deepEqual(leftovers(dir, stem), []);
  });
  for (const [fs, how] of [
    ['xfs', 'discard'],
    ['btrfs', 'zerofree'],
  ] as const) {
    test(`a ${fs} root file system, which zerofree cannot handle, is zeroed by discard (zero-free-space = ${how})`, async () => {
      const dir = workDir(fs);
      const dataMiB = 100;
      const { config, image } = writeFixtureConfig(dir, {
        directives: { fs, 'data-mb': dataMiB },
        keys: { 'zero-free-space': how },
      });
      const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
      assert.equal(run.code, 0, run.stderr);
      const stem = builtStem(run.stderr, image);
      const qcow2 = join(dir, `${stem}.qcow2`);
      assert.match(run.stderr, /free space discarded/);
      if (how === 'zerofree')
        assert.match(
          run.stderr,
          new RegExp(
            `WARNING: zerofree cannot zero a ${fs} file system \\([^)]*\\): discarding its free space instead`,
          ),
        );
      assert.doesNotMatch(run.stderr, /Calling guestfish zerofree /);
      // Btrfs is trimmed on a read-only mount, where no free space is set aside for new tree blocks.
      if (fs === 'btrfs')
        assert.match(run.stderr, /guestfish mount-options ro,subvolid=5 \/dev\/sda1 \/\n(.*\n)*?.*guestfish fstrim \//);
      assertZeroed(qcow2, dataMiB);
      assert.deepEqual(leftovers(dir, stem), []);
    });
  }

  test('an XFS root in a work folder that cannot punch holes (ramfs): the scrub works on a qcow2 overlay, whose discards read as zeros, commits it into the raw disk, and the removed data is not in the image', async (t) => {
    // A folder on a file system where qemu's discards cannot become holes, as on NFSv3 or vfat (this
    // host's kernel has ramfs of those: fallocate's punch-hole mode is unsupported there).
    const dir = join(workDir('no-holes'), 'work');
    execFileSync('mkdir', [dir]);
    execFileSync('mount', ['-t', 'ramfs', '-o', 'mode=755', 'ramfs', dir]);
    t.after(() => execFileSync('umount', [dir]));
    const dataMiB = 100;
    const { config, image } = writeFixtureConfig(dir, {
      directives: { fs: 'xfs', 'data-mb': dataMiB },
      keys: { 'zero-free-space': 'discard' },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    const stem = builtStem(run.stderr, image);
    const qcow2 = join(dir, `${stem}.qcow2`);
    assert.match(run.stderr, /cannot punch holes \(discards would be lost\): the scrub works on a qcow2 overlay/);
    assert.match(run.stderr, /Calling guestfish add-drive \S+\.raw\.scrub\.qcow2 format:qcow2 /);
    assert.match(run.stderr, /\(xfs\): free space discarded \(zeros in the scrub's overlay\)/);
    assert.match(run.stderr, /Calling qemu-img commit -q \S+\.raw\.scrub\.qcow2\n/);
    assert.doesNotMatch(run.stderr, /did not punch holes|zero-free-space \//);
    assertZeroed(qcow2, dataMiB);
    execFileSync('sha256sum', ['-c', `${stem}.qcow2.sha256sum`], { cwd: dir });
    // The ramfs under the work folder is the test's own (unmounted after it).
    assert.deepEqual(
      leftovers(dir, stem).filter((entry) => entry !== `mount ${dir}`),
      [],
    );
  });

  test("an rpm system: its database (made with the host's rpmbuild and rpm) is read into the manifest, the package list and the SBOM, and the image's database is left as it was", async (t) => {
    const dir = workDir('rpm');
    const db = join(dir, 'rpmdb');
    rpmDatabase(dir, db);
    const tarball = join(dir, 'rpmdb.tar');
    execFileSync('tar', ['-C', db, '-cf', tarball, '.']);
    const dbFiles = readdirSync(db).sort();
    const server = createServer((req, res) => {
      if (req.url === '/rpmdb.tar') res.end(readFileSync(tarball));
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const { config, image } = writeFixtureConfig(dir, {
      directives: { rpmdb: `http://10.0.2.2:${port}/rpmdb.tar`, 'data-mb': 0 },
    });
    const run = await runCli([image], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    const stem = builtStem(run.stderr, image);
    assert.match(run.stderr, /Installed system: Fixture Linux 1, kernel 6\.1\.0-fixture-amd64, 2 packages \(rpm\)/);
    const manifest = JSON.parse(readFileSync(join(dir, `${stem}.manifest.json`), 'utf8')) as {
      packageManager: string;
      packages: unknown[];
    };
    assert.equal(manifest.packageManager, 'rpm');
    assert.deepEqual(manifest.packages, RPM_PACKAGES);
    assert.equal(
      readFileSync(join(dir, `${stem}.packages`), 'utf8'),
      'fixture-hello 1:1.2-3.fx1\nfixture-hello-libs 1:1.2-3.fx1\n',
    );
    const sbom = readFileSync(join(dir, `${stem}.cdx.json`), 'utf8');
    assert.equal(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(sbom), null);
    assert.match(sbom, /"purl": "pkg:rpm\/fixture\/fixture-hello@1\.2-3\.fx1\?arch=noarch&distro=fixture-1&epoch=1"/);
    // rpm queried a copy outside the image: the guest's database has the files it had, no -shm or -wal.
    inspectImage(join(dir, `${stem}.qcow2`), (root) => {
      assert.deepEqual(readdirSync(join(root, 'usr/lib/sysimage/rpm')).sort(), dbFiles);
      assert.ok(!existsSync(join(root, 'var/lib/dpkg/status')));
    });
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('zero-free-space = none leaves free space as the installer left it', async () => {
    const dir = workDir('nozero');
    const dataMiB = 48;
    const { config, image } = writeFixtureConfig(dir, {
      directives: { 'data-mb': dataMiB },
      keys: { 'zero-free-space': 'none' },
    });
    const run = await runCli([image, '--log-file'], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    assert.equal(run.code, 0, run.stderr);
    const stem = builtStem(run.stderr, image);
    // --log-file writes the same lines as stderr to <image>-<date>.log.
    const log = readFileSync(join(dir, `${stem}.log`), 'utf8');
    assert.match(log, /INFO: Successfully created /);
    assert.equal(
      log.split('\n').filter((line) => / image-factory \[\d+\] /.test(line)).length,
      run.stderr.split('\n').filter((line) => / image-factory \[\d+\] /.test(line)).length,
    );
    const qcow2 = join(dir, `${stem}.qcow2`);
    assert.doesNotMatch(run.stderr, /Calling guestfish (fstrim|zerofree) /);
    // The deleted data is still in the image: the setting does what it says.
    assert.ok(statSync(qcow2).size > dataMiB * 1024 * 1024, `qcow2 is only ${statSync(qcow2).size} bytes`);
    execFileSync('sha256sum', ['-c', `${stem}.qcow2.sha256sum`], { cwd: dir });
    assert.deepEqual(leftovers(dir, stem), []);
  });
});

describe('a failed build says which step failed and leaves nothing behind', () => {
  async function failingBuild(name: string, options: Parameters<typeof writeFixtureConfig>[1], args: string[] = []) {
    const dir = workDir(name);
    const { config, image } = writeFixtureConfig(dir, options);
    const run = await runCli([image, ...args], { cwd: dir, env: { IMAGE_FACTORY_CONFIG: config } });
    const stem = builtStem(run.stderr, image);
    const files = readdirSync(dir).filter(
      (f) => f.startsWith(stem) && !f.endsWith('.console.log') && !f.endsWith('.log'),
    );
    return { run, dir, image, stem, files };
  }

  test('an installer that leaves the disk empty', async () => {
    const { run, dir, stem, files } = await failingBuild('empty', { directives: { partitions: 0 } });
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /scrub step failed: Expected file systems on the installed disk, but found no partition table and no file system on the [\d.]+ [GM]iB disk \(did the installer write it\?\)\./,
    );
    assert.deepEqual(files, []);
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('an installer that hangs is stopped at install-timeout, quoting its last console lines', async () => {
    const { run, dir, stem, files } = await failingBuild('hang', {
      directives: { hang: 1 },
      // The message and the screen it quotes are the point, not the limit: it leaves a busy machine
      // room to boot the fixture's kernel under TCG to its first line.
      keys: { 'install-timeout': '90s' },
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /install step failed: the installer did not finish within 1m30s/);
    assert.match(run.stderr, /The console's last screen:\n(.*\n)*.*\| .*fixture-installer/);
    assert.deepEqual(files, []);
    assert.deepEqual(leftovers(dir, stem), []);
  });

  test('a kernel URL that does not exist fails the fetch step', async () => {
    const server = createServer((_req, res) => {
      res.statusCode = 404;
      res.end('not here');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const { run, dir, image, stem, files } = await failingBuild('nokernel', {
        keys: { linux: `http://127.0.0.1:${port}/missing/vmlinuz` },
      });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /fetch step failed: .*linux.*404/);
      assert.deepEqual(files, []);
      assert.deepEqual(leftovers(dir, stem), []);
      assert.deepEqual(
        readdirSync(join(dir, 'cache', image)).filter((f) => f.includes('partial')),
        [],
      );
    } finally {
      server.close();
    }
  });

  test('SIGTERM during the install stops the VM and removes everything', async () => {
    const dir = workDir('sigterm');
    const { config, image } = writeFixtureConfig(dir, { directives: { hang: 1 } });
    let log = '';
    let domain: string | undefined;
    let sent = false;
    const run = await runCli([image], {
      cwd: dir,
      env: { IMAGE_FACTORY_CONFIG: config },
      onStderr: (text, child) => {
        log += text;
        if (domain) return;
        domain = virtInstallDomain(log);
        if (!domain) return;
        // Once the installer's VM runs, however long a busy machine takes to start it.
        void domainRunning(domain, () => child.exitCode !== null || child.signalCode !== null).then((running) => {
          if (running) sent = child.kill('SIGTERM');
        });
      },
    });
    const stem = builtStem(run.stderr, image);
    assert.ok(sent, `the installer's VM was never seen running:\n${run.stderr}`);
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stderr, /SIGTERM received: stopping the build and cleaning up/);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith(stem) && /\.(qcow2|raw|sha256sum)$/.test(f)),
      [],
    );
    assert.deepEqual(leftovers(dir, stem), []);
  });
});
