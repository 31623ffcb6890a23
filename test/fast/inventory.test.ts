import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { localTree } from '../support/local-tree.js';
import { GuestTree } from '../../src/guest/guest-tree.js';
import {
  inspectSystem,
  parseDpkgStatus,
  parseOsRelease,
  parseRpmQuery,
  RPM_QUERY_FORMAT,
  type Inventory,
} from '../../src/guest/inventory.js';
import { checksumLines, manifestJson, packagesText, packageUrl, sbomJson } from '../../src/supply-chain/manifest.js';
import { testContext, testSpec } from '../support/build-context.js';

const work = mkdtempSync(join(tmpdir(), 'inventory-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

const STATUS = `Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: all
Version: 1.0-1

Package: bash
Status: install ok installed
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b2
`;

function tree(name: string, files: Record<string, string>, links: Record<string, string> = {}): string {
  const root = join(work, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  for (const [path, target] of Object.entries(links)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    symlinkSync(target, join(root, path));
  }
  return root;
}

const spec = testSpec({ outputDir: '/images' });

describe('reading the installed system', () => {
  test("dpkg's status: installed packages only, with their source package, sorted", () => {
    assert.deepEqual(parseDpkgStatus(STATUS), [
      {
        name: 'base-files',
        version: '12.4+deb12u5',
        architecture: 'amd64',
        source: 'base-files',
        sourceVersion: '12.4+deb12u5',
      },
      { name: 'bash', version: '5.2.15-2+b2', architecture: 'amd64', source: 'bash', sourceVersion: '5.2.15-2' },
      {
        name: 'libc6',
        version: '2.36-9+deb12u4',
        architecture: 'amd64',
        source: 'glibc',
        sourceVersion: '2.36-9+deb12u4',
      },
    ]);
  });

  test('os-release: quotes and escapes removed, comments skipped', () => {
    assert.deepEqual(parseOsRelease('# c\nID=debian\nPRETTY_NAME="Debian \\"12\\""\nVERSION_ID=\'12\'\n'), {
      ID: 'debian',
      PRETTY_NAME: 'Debian "12"',
      VERSION_ID: '12',
    });
  });

  test("rpm's query lines: epoch kept in the version, the source rpm's name and version, gpg-pubkey skipped", () => {
    const lines = [
      'bash\t5.2.26-3.fc40\tx86_64\tbash-5.2.26-3.fc40.src.rpm',
      'gpg-pubkey\ta15b79cc-63d04c2c\t(none)\t(none)',
      'openssl-libs\t1:3.2.1-2.fc40\tx86_64\topenssl-3.2.1-2.fc40.src.rpm',
    ].join('\n');
    assert.deepEqual(parseRpmQuery(`${lines}\n`), [
      {
        name: 'bash',
        version: '5.2.26-3.fc40',
        architecture: 'x86_64',
        source: 'bash',
        sourceVersion: '5.2.26-3.fc40',
      },
      {
        name: 'openssl-libs',
        version: '1:3.2.1-2.fc40',
        architecture: 'x86_64',
        source: 'openssl',
        sourceVersion: '3.2.1-2.fc40',
      },
    ]);
  });

  test("a dpkg system: os-release through the guest's own symlink, kernels from /boot and /lib/modules", async () => {
    const root = tree(
      'dpkg',
      {
        'usr/lib/os-release':
          'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nPRETTY_NAME="Debian GNU/Linux 12"\n',
        'var/lib/dpkg/status': STATUS,
        'boot/vmlinuz-6.1.0-18-amd64': 'kernel',
        'usr/lib/modules/6.1.0-20-amd64/modules.dep': '',
      },
      // usrmerge's /lib, and os-release as Debian links it (absolute here: resolved inside the guest).
      { lib: 'usr/lib', 'etc/os-release': '/usr/lib/os-release' },
    );
    const { ctx, recording } = testContext(spec, { recording: true, uid: 0 });
    const inventory = await inspectSystem(ctx, new GuestTree(localTree(root)));
    assert.equal(inventory.osRelease.VERSION_CODENAME, 'bookworm');
    assert.deepEqual(inventory.kernels, ['6.1.0-18-amd64', '6.1.0-20-amd64']);
    assert.equal(inventory.packageManager, 'dpkg');
    assert.deepEqual(
      inventory.packages.map((entry) => entry.name),
      ['base-files', 'bash', 'libc6'],
    );
    assert.deepEqual(recording?.commands(), []);
  });

  test("dpkg's journal over its status, as dpkg-query reads them: records in number order, an upgrade, a removal, a new package", () => {
    const journal = [
      // 0002 before 0010: the order of their numbers, not of their names.
      'Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b3\n',
      'Package: hello\nStatus: install ok unpacked\nArchitecture: amd64\nVersion: 2.10-3\n',
      'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n',
      'Package: base-files\nStatus: deinstall ok not-installed\nArchitecture: amd64\n',
    ];
    assert.deepEqual(
      parseDpkgStatus(STATUS, journal).map((entry) => `${entry.name} ${entry.version}`),
      ['bash 5.2.15-2+b3', 'hello 2.10-3', 'libc6 2.36-9+deb12u4'],
    );
  });

  test("a dpkg system whose journal was not folded in: its numbered records read in order, a symlink or dpkg's scratch file among them not", async () => {
    const host = tree('journal-host', { secret: 'Package: host-secret\nStatus: install ok installed\nVersion: 1\n' });
    const root = tree(
      'journal',
      {
        'var/lib/dpkg/status': STATUS,
        'var/lib/dpkg/updates/0010':
          'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n',
        'var/lib/dpkg/updates/0002':
          'Package: hello\nStatus: install ok half-configured\nArchitecture: amd64\nVersion: 2.10-2\n',
        'var/lib/dpkg/updates/tmp.i': 'Package: scratch\nStatus: install ok installed\nVersion: 1\n',
      },
      { 'var/lib/dpkg/updates/0011': join(host, 'secret') },
    );
    const { ctx, reporter } = testContext(spec, { recording: true, uid: 0 });
    const inventory = await inspectSystem(ctx, new GuestTree(localTree(root)));
    assert.deepEqual(
      inventory.packages.map((entry) => `${entry.name} ${entry.version}`),
      ['base-files 12.4+deb12u5', 'bash 5.2.15-2+b2', 'hello 2.10-3', 'libc6 2.36-9+deb12u4'],
    );
    assert.match(reporter.text(), /dpkg's journal holds 2 record\(s\) not yet in its status file/);
    assert.doesNotMatch(reporter.text(), /host-secret|scratch/);
  });

  test("a hostile guest: a dpkg status or os-release that points at the host's files is read inside the guest", async () => {
    const host = tree('host-side', { status: 'Package: host-secret\nStatus: install ok installed\nVersion: 1\n' });
    const root = tree(
      'hostile',
      {},
      { 'var/lib/dpkg': join(host), 'etc/os-release': `../../../../../../..${host}/status` },
    );
    const { ctx, reporter } = testContext(spec, { recording: true, uid: 0 });
    const inventory = await inspectSystem(ctx, new GuestTree(localTree(root)));
    assert.deepEqual(inventory.packages, []);
    assert.deepEqual(inventory.osRelease, {});
    assert.equal(inventory.packageManager, 'none');
    assert.doesNotMatch(reporter.text(), /host-secret/);
  });

  test("an rpm system: the database's regular files copied to a private folder, rpm queries the copy, the copy removed", async () => {
    const root = tree(
      'rpm',
      { 'usr/lib/sysimage/rpm/rpmdb.sqlite': 'sqlite', 'usr/lib/sysimage/rpm/.rpm.lock': '' },
      { 'var/lib/rpm': '../../usr/lib/sysimage/rpm', 'usr/lib/sysimage/rpm/rpmdb.sqlite-wal': '/etc/shadow' },
    );
    const { ctx, recording } = testContext(spec, {
      recording: {
        answers: [
          { match: /^rpm --dbpath /, result: { stdout: 'bash\t5.2.26-3.fc40\tx86_64\tbash-5.2.26-3.fc40.src.rpm\n' } },
        ],
      },
      uid: 0,
    });
    const changes: string[] = [];
    const inventory = await inspectSystem(ctx, new GuestTree(localTree(root, changes)));
    const copy = join(tmpdir(), 'image-factory-rpmdb.XXXXXX');
    const db = 'usr/lib/sysimage/rpm';
    assert.deepEqual(changes.sort(), [
      `copy ${db}/.rpm.lock ${copy}/.rpm.lock`,
      `copy ${db}/rpmdb.sqlite ${copy}/rpmdb.sqlite`,
    ]);
    assert.deepEqual(recording?.commands(), [`rpm --dbpath ${copy} --query --all --queryformat '${RPM_QUERY_FORMAT}'`]);
    assert.deepEqual(recording?.fileOperations('remove'), [[copy]]);
    assert.deepEqual(recording?.leftovers(), []);
    assert.equal(inventory.packageManager, 'rpm');
    assert.deepEqual(inventory.packages[0].name, 'bash');
  });
});

const inventory: Inventory = {
  osRelease: { ID: 'debian', VERSION_ID: '12', PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)' },
  kernels: ['6.1.0-18-amd64'],
  packageManager: 'dpkg',
  packages: parseDpkgStatus(STATUS),
};

describe("names, versions and architectures the package manager's own rules refuse", () => {
  /** Packages that would write lines of their own into `.packages` and `.changes`, and what dpkg allows. */
  const FORGED_DPKG = [
    ['evil name', '1.0-1', 'amd64'],
    ['evil2', '1.0 2.0', 'amd64'],
    ['evil3', '1.0-1', 'amd64 x'],
    ['evil\x1b[2J', '1.0', 'amd64'],
    ['evil5', '1.0\x1b]0;t', 'amd64'],
    ['evil6', '1.0\u2028::error::x', 'amd64'],
    ['-evil', '1.0', 'amd64'],
    ['evil8', 'a:1.0', 'amd64'],
    ['evil9', '1.0-', 'amd64'],
    ['evil10', '1.0-1_2', 'amd64'],
  ];
  const dpkgRecord = ([name, version, architecture]: string[]): string =>
    `Package: ${name}\nStatus: install ok installed\nArchitecture: ${architecture}\nVersion: ${version}\n`;

  test('dpkg: such a package is left out and reported; the package list keeps one `name version` a line', () => {
    const skipped: string[] = [];
    const status = [STATUS, ...FORGED_DPKG.map(dpkgRecord)].join('\n');
    const packages = parseDpkgStatus(status, [], (entry) => skipped.push(`${entry.name} ${entry.problem}`));
    assert.deepEqual(
      packages.map((entry) => entry.name),
      ['base-files', 'bash', 'libc6'],
    );
    assert.equal(skipped.length, FORGED_DPKG.length, skipped.join('\n'));
    assert.match(
      skipped[0],
      /^evil name its name is not one dpkg accepts: U\+0020 is not a letter, digit or one of -\+\._$/,
    );
    // What dpkg takes, odd or not: an epoch, ~, +, a version starting with a letter (dpkg warns), no architecture.
    const odd = [
      ['0ad', '0.0.26-3', 'amd64'],
      ['g++-12', '12.2.0-14', 'amd64'],
      ['libstdc++6', '1:12.2.0-14~rc1+b1', 'arm64'],
      ['x_y.z', 'a1.0', 'all'],
      ['Upper', '2:1.0-1.2+3~4', ''],
    ];
    const kept = parseDpkgStatus(odd.map(dpkgRecord).join('\n'), [], (entry) => assert.fail(entry.problem));
    assert.equal(kept.length, odd.length);
    for (const line of packagesText({ ...inventory, packages: [...packages, ...kept] })
      .split('\n')
      .slice(0, -1))
      assert.match(line, /^\S+ \S+$/);
  });

  test('rpm: such a package, or a line that is not one package, is left out and reported', () => {
    const lines = [
      'bash\t5.2.26-3.fc40\tx86_64\tbash-5.2.26-3.fc40.src.rpm',
      'gpg-pubkey\ta15b79cc-63d04c2c\t(none)\t(none)',
      'evil name\t1.0-1\tx86_64\tevil-1.0-1.src.rpm',
      'evil\t1.0 2.0-1\tx86_64\tevil-1.0-1.src.rpm',
      'evil\t1.0-1\tx86 64\tevil-1.0-1.src.rpm',
      'evil\t1.0\tx86_64\tevil-1.0-1.src.rpm',
      'evil\t1..0-1\tx86_64\tevil-1.0-1.src.rpm',
      'evil\r::error::x\t1.0-1\tx86_64\tevil-1.0-1.src.rpm',
      // A name with a line break in it: rpm prints the two halves as two lines.
      'evil',
      'half\t1.0-1\tnoarch\thalf-1.0-1.src.rpm',
      'kernel-core\t6.8.5-301.fc40\tx86_64\tkernel-6.8.5-301.fc40.src.rpm',
      'python3.12\t3.12.2-2.fc40\tx86_64\tpython3.12-3.12.2-2.fc40.src.rpm',
      'git\t2.44.0^20240401git1-1.fc40\tx86_64\tgit-2.44.0-1.fc40.src.rpm',
      'some-pubkey-like\t1-1\t(none)\t(none)',
    ];
    const skipped: string[] = [];
    const packages = parseRpmQuery(`${lines.join('\n')}\n`, (entry) => skipped.push(entry.problem));
    assert.deepEqual(
      packages.map((entry) => entry.name),
      ['bash', 'git', 'half', 'kernel-core', 'python3.12', 'some-pubkey-like'],
    );
    assert.equal(skipped.length, 7, skipped.join('\n'));
    assert.ok(skipped.includes('rpm printed it as part of a line, not as a package'));
  });

  test('the build says how many it left out and names the first few, each cut short', async () => {
    const many = Array.from({ length: 50 }, (_, i) => dpkgRecord([`evil${'x'.repeat(500)} ${i}`, '1.0', 'amd64']));
    const root = tree('forged-dpkg', { 'var/lib/dpkg/status': [STATUS, ...many].join('\n') });
    const { ctx, reporter } = testContext(spec, { recording: true, uid: 0 });
    const found = await inspectSystem(ctx, new GuestTree(localTree(root)));
    assert.equal(found.packages.length, 3);
    const warnings = reporter.lines.filter((line) => line.startsWith('warning: '));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /left 50 package\(s\) of the dpkg database out of the manifest, \.packages and SBOM/);
    assert.match(warnings[0], /; and 45 more$/);
    assert.ok(warnings[0].length < 2000, `${warnings[0].length} characters`);
  });
});

describe('the manifest and the SBOM', () => {
  test('the manifest names the distribution, the kernel and each package; the package list is `name version` lines', () => {
    const manifest = JSON.parse(manifestJson(spec, { name: 'img.qcow2', size: 4096 }, inventory)) as Record<
      string,
      unknown
    >;
    assert.deepEqual(manifest.distribution, {
      id: 'debian',
      release: '12',
      codename: '',
      name: 'Debian GNU/Linux 12 (bookworm)',
    });
    assert.equal(manifest.kernel, '6.1.0-18-amd64');
    assert.deepEqual((manifest.packages as unknown[])[2], {
      name: 'libc6',
      version: '2.36-9+deb12u4',
      architecture: 'amd64',
      source: 'glibc',
      sourceVersion: '2.36-9+deb12u4',
    });
    assert.equal(packagesText(inventory), 'base-files 12.4+deb12u5\nbash 5.2.15-2+b2\nlibc6 2.36-9+deb12u4\n');
  });

  test('package URLs: deb with its distro and source, rpm with the epoch as a qualifier', () => {
    assert.equal(
      packageUrl(inventory, inventory.packages[2]),
      'pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12&upstream=glibc',
    );
    const fedora: Inventory = { ...inventory, osRelease: { ID: 'fedora', VERSION_ID: '40' }, packageManager: 'rpm' };
    assert.equal(
      packageUrl(fedora, {
        name: 'openssl-libs',
        version: '1:3.2.1-2.fc40',
        architecture: 'x86_64',
        source: 'openssl',
      }),
      'pkg:rpm/fedora/openssl-libs@3.2.1-2.fc40?arch=x86_64&distro=fedora-40&epoch=1&upstream=openssl',
    );
  });

  test("the SBOM validates against CycloneDX 1.6's JSON schema and describes the image, its packages and inputs", async () => {
    const sha = 'a'.repeat(64);
    const inputs = [
      { role: 'installer-kernel' as const, name: 'linux', sha256: 'b'.repeat(64) },
      { role: 'answer-file' as const, name: '/etc/image-factory/preseed.cfg', sha256: 'c'.repeat(64) },
    ];
    const text = sbomJson(spec, { name: 'img.qcow2', sha256: sha }, inventory, inputs);
    const errors = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text);
    assert.equal(errors, null, JSON.stringify(errors));
    const bom = JSON.parse(text) as {
      metadata: { component: { name: string; hashes: Array<{ alg: string; content: string }> } };
      components: Array<{ name: string; purl?: string; scope?: string; hashes?: Array<{ content: string }> }>;
      dependencies: Array<{ ref: string; dependsOn?: string[] }>;
    };
    assert.equal(bom.metadata.component.name, 'img.qcow2');
    assert.deepEqual(bom.metadata.component.hashes, [{ alg: 'SHA-256', content: sha }]);
    const purls = bom.components.flatMap((component) => (component.purl ? [component.purl] : []));
    assert.equal(purls.length, 3);
    assert.ok(purls.every((purl) => purl.startsWith('pkg:deb/debian/')));
    const excluded = bom.components.filter((component) => component.scope === 'excluded');
    assert.deepEqual(
      excluded.map((component) => [component.name, component.hashes?.[0].content]),
      [
        ['/etc/image-factory/preseed.cfg', 'c'.repeat(64)],
        ['linux', 'b'.repeat(64)],
      ],
    );
    assert.equal(bom.dependencies.find((entry) => entry.ref === 'image')?.dependsOn?.length, 3);
  });

  test('the checksum list is what sha256sum -c reads: digest, two spaces, the file name', () => {
    assert.equal(checksumLines([{ path: '/out/a.qcow2', sha256: 'f'.repeat(64) }]), `${'f'.repeat(64)}  a.qcow2\n`);
  });
});
