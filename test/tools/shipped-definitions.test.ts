/**
 * The shipped image definitions (data/image-factory.conf), read by Python's
 * configparser as the original image-factory reads them: every image the
 * project promises is there, complete, with sizes its installer accepts, URLs
 * that name a host, the serial console, and nothing left unresolved. The
 * table of README.md lists the same images with the same values.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigParser } from '../../src/config/configparser.js';
import { parseBytes } from '../../src/common/units.js';

const DATA_DIR = join(process.cwd(), 'data');
const CONF = join(DATA_DIR, 'image-factory.conf');
const README = join(DATA_DIR, '..', 'README.md');
const DUMP_CONFIG = join(process.cwd(), 'test', 'support', 'dump-config.py');

type Family = 'debian-installer' | 'subiquity' | 'anaconda' | 'yast';
type AnswerKey = 'preseed' | 'kickstart' | 'yast' | 'autoinstall';

const GiB = 1024 ** 3;

/** What each installer needs: its answer file key, how it gets it, and the least memory and disk it accepts. */
const FAMILIES: Record<
  Family,
  { answerKey: AnswerKey; delivery: 'inject' | 'http'; minRam: number; minImageSize: number }
> = {
  'debian-installer': { answerKey: 'preseed', delivery: 'inject', minRam: 1 * GiB, minImageSize: 2 * GiB },
  // The initrd holds the whole live ISO (about 3 GiB) in memory.
  subiquity: { answerKey: 'autoinstall', delivery: 'http', minRam: 6 * GiB, minImageSize: 5 * GiB },
  // Anaconda holds its root file system in memory and refuses disks below about 4 GiB.
  anaconda: { answerKey: 'kickstart', delivery: 'inject', minRam: 3 * GiB, minImageSize: 4 * GiB },
  yast: { answerKey: 'yast', delivery: 'inject', minRam: 2 * GiB, minImageSize: 3 * GiB },
};

/** The images the project ships, with the osinfo name chosen for each (see the conf's comments). */
const IMAGES: Record<string, { family: Family; osinfo: string }> = {
  'Debian-12-server': { family: 'debian-installer', osinfo: 'linux2022' },
  'Debian-13-server': { family: 'debian-installer', osinfo: 'linux2022' },
  'Ubuntu-24.04-LTS-server': { family: 'subiquity', osinfo: 'linux2022' },
  'Ubuntu-22.04-LTS-server': { family: 'subiquity', osinfo: 'ubuntu22.04' },
  'Fedora-server': { family: 'anaconda', osinfo: 'linux2022' },
  'AlmaLinux-9': { family: 'anaconda', osinfo: 'almalinux9' },
  'AlmaLinux-10': { family: 'anaconda', osinfo: 'linux2022' },
  'Rocky-9': { family: 'anaconda', osinfo: 'rocky9' },
  'Rocky-10': { family: 'anaconda', osinfo: 'linux2022' },
  'CentOS-Stream-9': { family: 'anaconda', osinfo: 'centos-stream9' },
  'CentOS-Stream-10': { family: 'anaconda', osinfo: 'linux2022' },
  'openSUSE-Leap-15.6-server': { family: 'yast', osinfo: 'linux2022' },
};

const ANSWER_KEYS: AnswerKey[] = ['preseed', 'kickstart', 'yast', 'autoinstall'];

type Items = Record<string, string>;

/** A folder for the files the tests write; removed at the end. */
const scratch = mkdtempSync(join(tmpdir(), 'shipped-definitions-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Python's reading of configuration files: {section: items}, or {__error__} for a section that does not resolve. */
function pythonSections(dataDir: string, ...files: string[]): Record<string, Items> {
  const output = execFileSync('python3', [DUMP_CONFIG, dataDir, ...files], { encoding: 'utf8' });
  return (JSON.parse(output) as { sections: Record<string, Items> }).sections;
}

/** Every http(s)/rsync URL in a value: whole values and `key=URL` / `name,URL` words of a command line. */
function urlsIn(value: string): string[] {
  return value
    .split(/\s+/)
    .map((word) => /(?:^|[=,])((?:https?|rsync|ftp|file):[^\s,]*)/i.exec(word)?.[1])
    .filter((url): url is string => url !== undefined);
}

/**
 * What is wrong with one image's resolved section, for the image's family.
 * Empty when nothing is. A pure function, so that the checks can be shown to
 * fail on broken sections too.
 */
function sectionProblems(name: string, items: Items, family: Family, dataDir: string): string[] {
  const problems: string[] = [];
  const need = FAMILIES[family];
  if (items.__error__) return [`${name}: does not resolve: ${items.__error__}`];

  for (const [key, value] of Object.entries(items)) {
    if (/\$\{|\$[A-Za-z{]/.test(value)) problems.push(`${name}: ${key} still holds an unresolved reference: ${value}`);
  }

  const netboot = items.linux !== undefined && items.initrd !== undefined;
  if (!netboot && items.installer_image === undefined)
    problems.push(`${name}: needs linux and initrd (or installer_image)`);

  const answers = ANSWER_KEYS.filter((key) => items[key] !== undefined);
  if (answers.length !== 1) {
    problems.push(`${name}: needs exactly one answer file key, has ${answers.length ? answers.join(', ') : 'none'}`);
  } else if (answers[0] !== need.answerKey) {
    problems.push(`${name}: ${family} reads '${need.answerKey}', not '${answers[0]}'`);
  } else {
    const path = resolve(items[answers[0]]);
    if (dirname(path) !== resolve(dataDir))
      problems.push(`${name}: the answer file ${path} is not a shipped file in ${dataDir}`);
    else if (!existsSync(path)) problems.push(`${name}: the answer file ${path} does not exist`);
  }
  const delivery = (items['answer-delivery'] ?? 'inject').trim();
  if (delivery !== need.delivery)
    problems.push(`${name}: answer-delivery is '${delivery}'; ${family} needs '${need.delivery}'`);

  if (!items.osinfo || !/^[a-z][a-z0-9.-]*$/.test(items.osinfo))
    problems.push(`${name}: osinfo '${items.osinfo ?? ''}' is not an OS short name`);

  const ram = items.ram === undefined ? undefined : parseBytes(items.ram);
  if (ram === undefined) problems.push(`${name}: ram '${items.ram ?? ''}' is not a size`);
  else if (ram < need.minRam)
    problems.push(`${name}: ram ${items.ram} is less than ${need.minRam / GiB} GiB, what ${family} needs`);
  if (items['image-size'] === undefined) problems.push(`${name}: no image-size`);
  else {
    const size = parseBytes(items['image-size']);
    if (size === undefined) problems.push(`${name}: image-size '${items['image-size']}' is not a size`);
    else if (size < need.minImageSize)
      problems.push(
        `${name}: image-size ${items['image-size']} is less than the ${need.minImageSize / GiB} GiB ${family} accepts`,
      );
  }
  if (items.cores !== undefined && !/^[1-9][0-9]*$/.test(items.cores.trim()))
    problems.push(`${name}: cores '${items.cores}' is not a whole number`);

  const append = items.append ?? '';
  if (!/(^|\s)console=ttyS0(,|\s|$)/.test(append)) problems.push(`${name}: append lacks console=ttyS0`);
  if (/[\r\n]/.test(append)) problems.push(`${name}: append spans lines; a kernel command line cannot`);

  const urls = [items.linux, items.initrd, items.installer_image].filter(
    (value): value is string => value !== undefined,
  );
  urls.push(...urlsIn(append));
  for (const url of urls) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      problems.push(`${name}: '${url}' is not a URL`);
      continue;
    }
    if (!['http:', 'https:', 'rsync:'].includes(parsed.protocol))
      problems.push(`${name}: '${url}' is not http, https or rsync`);
    else if (!parsed.hostname) problems.push(`${name}: '${url}' has no host`);
    // Stable virt-install command lines: no build dates in what is downloaded.
    if (/(19|20)\d\d-?[01]\d-?[0-3]\d/.test(parsed.pathname)) problems.push(`${name}: '${url}' names a date`);
  }
  for (const key of ['linux_sha256', 'initrd_sha256']) {
    if (items[key] !== undefined && !/^[0-9a-f]{64}$/i.test(items[key].trim()))
      problems.push(`${name}: ${key} is not 64 hex digits`);
  }
  if (items.upload_destinations !== undefined && items.upload_destinations.trim() !== '') {
    problems.push(`${name}: upload_destinations is set; the shipped file must not upload anywhere`);
  }
  return problems;
}

/** The first column of the README's table of images (header starting with "Image"), and its other cells by header. */
function readmeTable(markdown: string): Array<Record<string, string>> {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => /^\|\s*Image\s*\|/.test(line));
  assert.ok(start >= 0, 'README.md has no table whose first column is "Image"');
  const cells = (line: string): string[] =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((cell) => cell.trim().replace(/^`|`$/g, ''));
  const header = cells(lines[start]);
  const rows: Array<Record<string, string>> = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.trim().startsWith('|')) break;
    const row = cells(line);
    rows.push(Object.fromEntries(header.map((title, index) => [title, row[index] ?? ''])));
  }
  return rows;
}

describe('shipped image definitions (data/image-factory.conf)', () => {
  let sections: Record<string, Items>;
  const text = readFileSync(CONF, 'utf8');

  before(() => {
    sections = pythonSections(DATA_DIR, CONF);
  });

  it('has a section for every image the project ships, and no other', () => {
    assert.deepEqual(Object.keys(sections).sort(), Object.keys(IMAGES).sort());
  });

  for (const [name, expected] of Object.entries(IMAGES)) {
    it(`${name}: complete and sound for ${expected.family}`, () => {
      const items = sections[name];
      assert.ok(items, `no [${name}] section`);
      assert.deepEqual(sectionProblems(name, items, expected.family, DATA_DIR), []);
      assert.equal(items.osinfo, expected.osinfo);
    });
  }

  it('leaves data_dir to image-factory and sets no upload destinations', () => {
    for (const line of text.split('\n')) {
      assert.doesNotMatch(line, /^\s*data_dir\s*[=:]/i, 'data_dir is predefined by image-factory');
      assert.doesNotMatch(line, /^\s*upload_destinations\s*[=:]/i, 'upload_destinations must stay commented out');
    }
  });

  it('keeps every regional mirror in [DEFAULT], where one line overrides it', () => {
    const parser = new ConfigParser();
    parser.read(text, CONF);
    const defaults = parser.defaults();
    for (const key of [
      'debian_mirror',
      'ubuntu_mirror',
      'fedora_mirror',
      'almalinux_mirror',
      'rocky_mirror',
      'centos_stream_mirror',
      'opensuse_mirror',
    ]) {
      assert.match(defaults[key] ?? '', /^https:\/\/[^/]+/, `[DEFAULT] ${key}`);
    }
  });

  it('takes a mirror override from a later file into the URLs', () => {
    const override = join(scratch, 'mirror-override.conf');
    writeFileSync(
      override,
      '[DEFAULT]\ndebian_mirror = https://mirror.example/debian\ncentos_stream_mirror = https://mirror.example/centos-stream\n',
    );
    const overridden = pythonSections(DATA_DIR, CONF, override);
    assert.equal(
      overridden['Debian-13-server'].linux,
      'https://mirror.example/debian/dists/trixie/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux',
    );
    assert.match(
      overridden['CentOS-Stream-10'].append,
      /inst\.repo=https:\/\/mirror\.example\/centos-stream\/10-stream\/BaseOS\/x86_64\/os /,
    );
  });

  it("reads the same with image-factory's own parser as with Python's", () => {
    const parser = new ConfigParser();
    parser.set('DEFAULT', 'data_dir', DATA_DIR);
    parser.read(text, CONF);
    assert.deepEqual(parser.sections(), Object.keys(sections));
    for (const name of parser.sections()) assert.deepEqual(parser.items(name), sections[name], name);
  });

  it('names OS variants that the local osinfo database knows (virt-install refuses others)', (t) => {
    const probe = spawnSync('osinfo-query', ['os', '--fields=short-id'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      t.skip('osinfo-query is not installed (apt-get install libosinfo-bin)');
      return;
    }
    const known = new Set(probe.stdout.split('\n').map((line) => line.trim()));
    for (const [name, items] of Object.entries(sections))
      assert.ok(known.has(items.osinfo), `${name}: osinfo ${items.osinfo} is unknown to this host's osinfo database`);
  });

  it('is listed in README.md with the same osinfo, RAM and image size', () => {
    const rows = readmeTable(readFileSync(README, 'utf8'));
    assert.deepEqual(
      rows.map((row) => row.Image),
      Object.keys(sections),
      "the README's table lists the conf's images, in the conf's order",
    );
    for (const row of rows) {
      const items = sections[row.Image];
      assert.equal(row.osinfo, items.osinfo, `${row.Image}: osinfo`);
      assert.equal(row.RAM, items.ram, `${row.Image}: RAM`);
      assert.equal(row['Image size'], items['image-size'], `${row.Image}: image size`);
      const answerKey = ANSWER_KEYS.find((key) => items[key] !== undefined) as AnswerKey;
      assert.ok(
        row['Answer file'].startsWith(basename(items[answerKey])),
        `${row.Image}: answer file ${row['Answer file']}`,
      );
    }
  });
});

describe('the checks of the shipped definitions fail on broken sections', () => {
  const good: Items = {
    linux:
      'https://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux',
    initrd:
      'https://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/initrd.gz',
    preseed: join(DATA_DIR, 'Debian-12-server.cfg'),
    append: 'auto=true priority=critical console=ttyS0,115200n8',
    osinfo: 'linux2022',
    ram: '1G',
    'image-size': '3G',
  };
  const problems = (changes: Items, drop: string[] = [], family: Family = 'debian-installer'): string[] => {
    const items = { ...good, ...changes };
    for (const key of drop) delete items[key];
    return sectionProblems('Broken', items, family, DATA_DIR);
  };

  it('accepts the good section they start from', () => {
    assert.deepEqual(problems({}), []);
  });

  const cases: Array<[string, Items, string[], RegExp, Family?]> = [
    ['no initrd', {}, ['initrd'], /needs linux and initrd/],
    ['no answer file', {}, ['preseed'], /exactly one answer file key, has none/],
    ['two answer files', { kickstart: join(DATA_DIR, 'Rocky-9.cfg') }, [], /exactly one answer file key/],
    ['the wrong kind of answer file', {}, [], /reads 'kickstart', not 'preseed'/, 'anaconda'],
    ['a missing answer file', { preseed: join(DATA_DIR, 'missing.cfg') }, [], /does not exist/],
    ['an answer file outside data/', { preseed: '/etc/hostname' }, [], /not a shipped file/],
    [
      'too little memory for anaconda',
      { kickstart: join(DATA_DIR, 'Rocky-9.cfg'), ram: '2G' },
      ['preseed'],
      /ram 2G is less than 3 GiB/,
      'anaconda',
    ],
    ['no image size', {}, ['image-size'], /no image-size/],
    ['an image size that is no size', { 'image-size': 'big' }, [], /not a size/],
    ['no serial console', { append: 'auto=true priority=critical' }, [], /lacks console=ttyS0/],
    ['an ftp URL', { linux: 'ftp://ftp.debian.org/debian/linux' }, [], /not http, https or rsync/],
    ['a URL without a host', { initrd: 'rsync:///debian/initrd.gz' }, [], /has no host/],
    ['a dated URL', { linux: 'https://deb.debian.org/debian/installer/20260101/linux' }, [], /names a date/],
    ['a URL in append without a host', { append: 'inst.repo=http:// console=ttyS0' }, [], /not a URL|has no host/],
    ['an unresolved reference', { linux: '${debian_mirror}/linux' }, [], /unresolved reference/],
    ['a section that does not resolve', { __error__: 'InterpolationMissingOptionError' }, [], /does not resolve/],
    ['http delivery for debian-installer', { 'answer-delivery': 'http' }, [], /needs 'inject'/],
    ['upload destinations', { upload_destinations: 'upload-host1' }, [], /must not upload/],
    ['a bad checksum', { linux_sha256: 'abc' }, [], /64 hex digits/],
  ];
  for (const [what, changes, drop, expected, family] of cases) {
    it(`rejects ${what}`, () => {
      const found = problems(changes, drop, family);
      assert.ok(
        found.some((problem) => expected.test(problem)),
        `expected ${expected} among: ${JSON.stringify(found)}`,
      );
    });
  }

  it('finds a section missing from a README table and a wrong value in it', () => {
    const rows = readmeTable('| Image | osinfo |\n| --- | --- |\n| `A` | `x` |\n\ntext\n');
    assert.deepEqual(rows, [{ Image: 'A', osinfo: 'x' }]);
    assert.throws(() => readmeTable('no table here\n'), /no table/);
  });

  it("reports Python's interpolation errors per section", () => {
    const broken = join(scratch, 'broken-interpolation.conf');
    writeFileSync(broken, '[Broken]\nlinux = ${nowhere}/linux\n');
    const result = pythonSections(DATA_DIR, broken);
    assert.match(result.Broken.__error__, /InterpolationMissingOptionError/);
  });
});
