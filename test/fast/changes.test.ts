import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseSource } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import { changesText, compareManifests, parseManifest } from '../../src/supply-chain/changes.js';
import type { Inventory } from '../../src/guest/inventory.js';
import { loadPreviousManifest } from '../../src/supply-chain/previous-manifest.js';
import type { Reporter } from '../../src/common/reporter.js';
import { compareDebVersions, compareRpmVersions, rpmvercmp } from '../../src/supply-chain/version-compare.js';
import { generatedVersions } from '../support/generated-versions.js';

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);
const opposite = (n: number): number => (n === 0 ? 0 : -n);

// [a, b, expected sign]: from deb-version(7) and dpkg's own test suite (t-version.c).
const DEB_TABLE: Array<[string, string, number]> = [
  ['1.0', '1.0', 0],
  ['1.0', '1.0-0', 0],
  ['0:1.0', '1.0', 0],
  ['1:0.1', '2.0', 1],
  ['1.0~rc1', '1.0', -1],
  ['1.0~~', '1.0~', -1],
  ['1.0~', '1.0', -1],
  ['1.0', '1.0a', -1],
  ['1.0a', '1.0+', -1],
  ['1.0+', '1.0.1', -1],
  ['1.0-1', '1.0-1+b1', -1],
  ['2.36-9', '2.36-9+deb12u4', -1],
  ['2.36-9+deb12u4', '2.36-9+deb12u10', -1],
  ['1.2.3', '1.2.10', -1],
  ['1.002', '1.2', 0],
  ['1.0-1', '1.0-1~bpo12+1', 1],
  ['7.88.1-10+deb12u5', '7.88.1-10+deb12u12', -1],
  ['1:2.0', '1:10.0', -1],
  ['1.0-a', '1.0-1', 1],
  ['a', 'b', -1],
  ['', '0', 0],
];

// From rpm's own tests (tests/rpmvercmp.at).
const RPM_TABLE: Array<[string, string, number]> = [
  ['1.0', '1.0', 0],
  ['1.0', '2.0', -1],
  ['2.0.1', '2.0.1a', -1],
  ['2.0.1a', '2.0.1', 1],
  ['5.5p1', '5.5p2', -1],
  ['5.5p10', '5.5p1', 1],
  ['10xyz', '10.1xyz', -1],
  ['xyz10', 'xyz10.1', -1],
  ['xyz.4', '8', -1],
  ['8', 'xyz.4', 1],
  ['1.0aa', '1.0a', 1],
  ['1.0', '1.0~rc1', 1],
  ['1.0~rc1', '1.0~rc2', -1],
  ['1.0~rc1~git123', '1.0~rc1', -1],
  ['1.0^', '1.0', 1],
  ['1.0^git1', '1.0^git2', -1],
  ['1.0^git1', '1.01', -1],
  ['1.0^20160101', '1.0.1', -1],
  ['1.0~rc1^git1', '1.0~rc1', 1],
  ['1.010', '1.9', 1],
  ['1.05', '1.5', 0],
  ['2_0', '2.0', 0],
  ['a+', 'a_', 0],
  ['+a', '_a', 0],
  ['+_', '_+', 0],
];

describe('package version order', () => {
  test("dpkg's rules: the table of deb-version(7) and dpkg's tests", () => {
    for (const [a, b, expected] of DEB_TABLE) {
      assert.equal(sign(compareDebVersions(a, b)), expected, `${a} vs ${b}`);
      assert.equal(sign(compareDebVersions(b, a)), opposite(expected), `${b} vs ${a}`);
    }
  });

  test("rpm's rpmvercmp: the table of rpm's tests; epochs and releases as rpm compares EVRs", () => {
    for (const [a, b, expected] of RPM_TABLE) {
      assert.equal(sign(rpmvercmp(a, b)), expected, `${a} vs ${b}`);
      assert.equal(sign(rpmvercmp(b, a)), opposite(expected), `${b} vs ${a}`);
    }
    assert.equal(sign(compareRpmVersions('1:1.0-1', '2.0-1')), 1, 'the epoch first');
    assert.equal(sign(compareRpmVersions('1.0-1.fc40', '1.0-2.fc40')), -1);
    assert.equal(sign(compareRpmVersions('0:1.0-1', '1.0-1')), 0, 'no epoch is epoch 0');
    assert.equal(sign(compareRpmVersions('1.0', '1.0-5')), -1, 'a missing release is older than any');
  });

  test('both orders are total orders on generated versions: antisymmetric, reflexive, transitive', () => {
    const versions = generatedVersions(16, 60);
    for (const compare of [compareDebVersions, compareRpmVersions]) {
      for (const a of versions) {
        assert.equal(compare(a, a), 0, a);
        for (const b of versions) {
          assert.equal(sign(compare(a, b)), opposite(sign(compare(b, a))), `${a} ${b}`);
          for (const c of versions.slice(0, 15)) {
            if (compare(a, b) <= 0 && compare(b, c) <= 0) assert.ok(compare(a, c) <= 0, `${a} <= ${b} <= ${c}`);
          }
        }
      }
    }
  });
});

const inventory = (packages: Array<[string, string, string?]>, manager: 'dpkg' | 'rpm' = 'dpkg'): Inventory => ({
  osRelease: { ID: 'debian' },
  kernels: [],
  packageManager: manager,
  packages: packages.map(([name, version, architecture]) => ({ name, version, architecture: architecture ?? 'amd64' })),
});

const previousText = JSON.stringify({
  image: 'img-2026-11-01.qcow2',
  date: '2026-11-01',
  imageSize: 1048576,
  packageManager: 'dpkg',
  packages: [
    { name: 'bash', version: '5.2.15-2+b2', architecture: 'amd64' },
    { name: 'libc6', version: '2.36-9+deb12u4', architecture: 'amd64' },
    { name: 'libc6', version: '2.36-9+deb12u4', architecture: 'i386' },
    { name: 'nano', version: '7.2-1', architecture: 'amd64' },
    { name: 'tzdata', version: '2025b-0+deb12u1', architecture: 'all' },
  ],
});

describe('what changed since the previous manifest', () => {
  test('added, removed, upgraded and downgraded by name and architecture, versions in dpkg order', () => {
    const changes = compareManifests(parseManifest(previousText, 'old.json'), {
      image: 'img-2026-12-01.qcow2',
      imageSize: 1048576 + 2 * 1048576,
      inventory: inventory([
        ['bash', '5.2.15-2+b2'],
        ['curl', '7.88.1-10+deb12u12'],
        ['libc6', '2.36-9+deb12u10'],
        ['libc6', '2.36-9+deb12u4', 'i386'],
        ['tzdata', '2025a-0+deb12u1', 'all'],
      ]),
    });
    assert.deepEqual(
      changes.added.map((entry) => entry.name),
      ['curl'],
    );
    assert.deepEqual(changes.removed, [{ name: 'nano', version: '7.2-1', architecture: 'amd64' }]);
    assert.deepEqual(changes.upgraded, [
      { name: 'libc6', architecture: 'amd64', from: '2.36-9+deb12u4', to: '2.36-9+deb12u10' },
    ]);
    assert.deepEqual(changes.downgraded, [
      { name: 'tzdata', architecture: 'all', from: '2025b-0+deb12u1', to: '2025a-0+deb12u1' },
    ]);
    assert.equal(
      changesText(changes),
      [
        'Changes of img-2026-12-01.qcow2 since img-2026-11-01.qcow2 (2026-11-01)',
        'Previous manifest: old.json',
        'Image size: 1.0 MiB -> 3.0 MiB: +2.0 MiB (+200.0 %) (1048576 -> 3145728 bytes)',
        'Packages: 5 -> 5 (1 added, 1 removed, 1 upgraded, 1 downgraded)',
        '',
        'Added:',
        '  curl amd64 7.88.1-10+deb12u12',
        '',
        'Removed:',
        '  nano amd64 7.2-1',
        '',
        'Upgraded:',
        '  libc6 amd64 2.36-9+deb12u4 -> 2.36-9+deb12u10',
        '',
        'Downgraded:',
        '  tzdata all 2025b-0+deb12u1 -> 2025a-0+deb12u1',
        '',
      ].join('\n'),
    );
  });

  test("rpm packages are ordered by rpm's rules (1.0^git1 is newer than 1.0, 1.0~rc1 older)", () => {
    const previous = parseManifest(
      JSON.stringify({
        packages: [
          { name: 'a', version: '1.0-1', architecture: 'x86_64' },
          { name: 'b', version: '1.0-1', architecture: 'x86_64' },
        ],
      }),
      'old.json',
    );
    const changes = compareManifests(previous, {
      image: 'new.qcow2',
      imageSize: 0,
      inventory: inventory(
        [
          ['a', '1.0^git1-1', 'x86_64'],
          ['b', '1.0~rc1-1', 'x86_64'],
        ],
        'rpm',
      ),
    });
    assert.deepEqual(
      changes.upgraded.map((entry) => entry.name),
      ['a'],
    );
    assert.deepEqual(
      changes.downgraded.map((entry) => entry.name),
      ['b'],
    );
    assert.match(changesText(changes), /^Image size: 0 B \(the previous manifest does not record its image's size\)$/m);
  });

  test("a previous manifest's package whose name, version or architecture its package manager refuses is bad input", () => {
    const manifest = (packageManager: string, entry: Record<string, string>): string =>
      JSON.stringify({
        image: 'x',
        packageManager,
        packages: [{ name: 'bash', version: '5.2-1', architecture: 'amd64' }, entry],
      });
    const forged = [
      { name: 'evil\n  added evil amd64 1.0', version: '1.0', architecture: 'amd64' },
      { name: 'evil name', version: '1.0', architecture: 'amd64' },
      { name: 'evil', version: '1.0\n\nAdded:', architecture: 'amd64' },
      { name: 'evil', version: '1.0 1', architecture: 'amd64' },
      { name: 'evil', version: '1.0', architecture: 'amd64\r::error::x' },
      { name: 'evil\x1b[2J', version: '1.0', architecture: 'amd64' },
      { name: '', version: '1.0', architecture: 'amd64' },
    ];
    for (const packageManager of ['dpkg', 'rpm', 'none', '']) {
      for (const entry of forged) {
        assert.throws(
          () =>
            parseManifest(
              manifest(packageManager, {
                ...entry,
                version: packageManager === 'rpm' ? `${entry.version}-1` : entry.version,
              }),
              'x',
            ),
          /^Error: has a package at packages\[1\] \(.*\) whose (name|version|architecture) is not one (dpkg|rpm) accepts: .*; give a/,
          `${packageManager}: ${JSON.stringify(entry)}`,
        );
      }
    }
    // The message shows the value on one line.
    assert.throws(
      () => parseManifest(manifest('dpkg', forged[0]), 'x'),
      /\('evil\\n {2}added evil amd64 1\.0' '1\.0'\)/,
    );
    // What each manager takes: rpm's ^ and (none), dpkg's epochs and ~; either, when the manifest names neither.
    const rpm = { name: 'git', version: '2.44.0^20240401git1-1.fc40', architecture: '(none)' };
    const dpkg = { name: 'libstdc++6', version: '1:12.2.0-14~rc1+b1', architecture: 'arm64' };
    assert.equal(parseManifest(manifest('rpm', rpm), 'x').packages.length, 2);
    assert.equal(parseManifest(manifest('dpkg', dpkg), 'x').packages.length, 2);
    assert.equal(parseManifest(manifest('', rpm), 'x').packages.length, 2);
    assert.throws(() => parseManifest(manifest('dpkg', rpm), 'x'), /not one dpkg accepts/);
  });

  test('the .changes header shows what the previous manifest says on one line each', () => {
    const previous = parseManifest(
      JSON.stringify({
        image: 'img\n\nAdded:\n  evil amd64 1.0',
        date: '2026\r\nRemoved:',
        packageManager: 'dpkg',
        packages: [],
      }),
      'old.json\nUpgraded:',
    );
    const text = changesText(
      compareManifests(previous, { image: 'img.qcow2', imageSize: 1, inventory: inventory([['bash', '5.2-1']]) }),
    );
    assert.deepEqual(
      text.split(/\r\n|\r|\n/).filter((line) => /^[A-Za-z]+:$/.test(line)),
      ['Added:'],
      text,
    );
    assert.match(text, /^Changes of img\.qcow2 since img\\n\\nAdded:\\n {2}evil amd64 1\.0 \(2026\\r\\nRemoved:\)$/m);
    assert.match(text, /^Previous manifest: old\.json\\nUpgraded:$/m);
  });

  test('a previous manifest that is not JSON, or not a manifest, says what is wrong', () => {
    assert.throws(() => parseManifest('<html>', 'x'), /^Error: is not JSON \(/);
    assert.throws(() => parseManifest('{"image": "x"}', 'x'), /has no "packages" list/);
    assert.throws(() => parseManifest('{"packages": [{"name": "a"}]}', 'x'), /at packages\[0\]/);
  });
});

describe('reading previous-manifest', () => {
  const work = mkdtempSync(join(tmpdir(), 'changes-test-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  const warnings: string[] = [];
  const reporter = {
    info: () => undefined,
    warning: (message: string) => warnings.push(message),
  } as unknown as Reporter;
  const fail = (message: string) => new UsageError(message);

  test('a file that is not a manifest is bad input (a UsageError, exit 2) naming the file', async () => {
    const path = join(work, 'bad.json');
    writeFileSync(path, 'not json');
    await assert.rejects(
      loadPreviousManifest(parseSource(path, fail), { reporter, live: true }),
      (error: Error) => error instanceof UsageError && error.message.includes(`previous manifest ${path} is not JSON`),
    );
    const good = join(work, 'good.json');
    writeFileSync(good, previousText);
    const loaded = await loadPreviousManifest(parseSource(good, fail), { reporter, live: true });
    assert.ok('manifest' in loaded && loaded.manifest.packages.length === 5);
  });

  test('a URL: downloaded; an unreachable one only warns, without its password; bad content is bad input', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/good.json') res.writeHead(200).end(previousText);
      else if (req.url === '/html') res.writeHead(200).end('<html>');
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://user:s3cret@127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const good = await loadPreviousManifest(parseSource(`${base}/good.json`, fail), { reporter, live: true });
      assert.ok('manifest' in good && good.manifest.image === 'img-2026-11-01.qcow2');
      warnings.length = 0;
      const missing = await loadPreviousManifest(parseSource(`${base}/missing.json`, fail), { reporter, live: true });
      assert.ok('unavailable' in missing, JSON.stringify(missing));
      assert.match(missing.unavailable, /404/);
      assert.equal(warnings.length, 1);
      assert.ok(!warnings[0].includes('s3cret') && !missing.source.includes('s3cret'), warnings[0]);
      await assert.rejects(
        loadPreviousManifest(parseSource(`${base}/html`, fail), { reporter, live: true }),
        (error: Error) =>
          error instanceof UsageError && /is not JSON/.test(error.message) && !/s3cret/.test(error.message),
      );
    } finally {
      server.close();
    }
  });
});
