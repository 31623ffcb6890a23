import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, ConfigParser, parseBoolean, type ConfigErrorKind } from '../../src/config/configparser.js';

const FILE = '/etc/image-factory.conf';

function parse(text: string, source = FILE): ConfigParser {
  const parser = new ConfigParser();
  parser.read(text, source);
  return parser;
}

/** Runs `action`, expects a ConfigError of `kind`, and returns it. */
function configError(kind: ConfigErrorKind, action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.kind, kind, error.message);
    return error;
  }
  assert.fail(`expected ${kind}, but nothing was thrown`);
}

describe('ConfigParser reading', () => {
  it('lists sections in file order, without DEFAULT', () => {
    const parser = parse('[DEFAULT]\na = 1\n[B]\n[A]\n');
    assert.deepEqual(parser.sections(), ['B', 'A']);
    assert.equal(parser.hasSection('A'), true);
    assert.equal(parser.hasSection('DEFAULT'), false);
  });

  it('lowers keys but keeps the case of section names', () => {
    const parser = parse('[Debian]\nRAM = 1G\n[debian]\nram = 2G\n');
    assert.equal(parser.get('Debian', 'ram'), '1G');
    assert.equal(parser.get('debian', 'RAM'), '2G');
    assert.equal(parser.hasOption('Debian', 'Ram'), true);
  });

  it('splits at the first = or : and strips the value', () => {
    const parser = parse('[A]\nurl = http://h:80/x  \nk: a=b\nempty =\n');
    assert.deepEqual(parser.items('A'), { url: 'http://h:80/x', k: 'a=b', empty: '' });
  });

  it('joins indented continuation lines, keeping inner blank lines and dropping comments', () => {
    const parser = parse('[A]\nappend = one\n  two\n\n  # not part of it\n\tthree\n\nnext = x\n');
    assert.equal(parser.get('A', 'append'), 'one\ntwo\n\nthree');
    assert.equal(parser.get('A', 'next'), 'x');
  });

  it('takes only lines indented deeper than the key line as continuation', () => {
    const parser = parse('[A]\n  a = 1\n  b = 2\n    more\nc = 3\n  d = 4\n');
    assert.deepEqual(parser.items('A'), { a: '1', b: '2\nmore', c: '3\nd = 4' });
  });

  it('has no inline comments', () => {
    assert.equal(parse('[A]\nk = v ; still the value\n').get('A', 'k'), 'v ; still the value');
  });

  it('ignores what follows the ] of a section header, as Python does', () => {
    const parser = parse('[A] this is ignored\nk = v\n[a]b]\nj = w\n');
    assert.deepEqual(parser.sections(), ['A', 'a]b']);
  });

  it('lets a later file override keys of an earlier one, keeping their order', () => {
    const parser = new ConfigParser();
    parser.read('[A]\na = 1\nb = 2\n', 'first.conf');
    parser.read('[A]\nc = 3\nb = 20\n', 'second.conf');
    assert.deepEqual(Object.entries(parser.items('A')), [
      ['a', '1'],
      ['b', '20'],
      ['c', '3'],
    ]);
    assert.deepEqual(parser.origin('A', 'b'), { file: 'second.conf', line: 3 });
    assert.deepEqual(parser.origin('A', 'a'), { file: 'first.conf', line: 2 });
  });

  it('puts DEFAULT keys first in items, with the section value winning', () => {
    const parser = parse('[DEFAULT]\nram = 1G\ncores = 1\n[S]\nimage-size = 4G\nram = 3G\n');
    assert.deepEqual(Object.entries(parser.items('S')), [
      ['ram', '3G'],
      ['cores', '1'],
      ['image-size', '4G'],
    ]);
    assert.deepEqual(parser.origin('S', 'cores'), { file: FILE, line: 3 });
    assert.deepEqual(parser.defaults(), { ram: '1G', cores: '1' });
  });

  it('keeps Python order for keys that look like numbers in itemEntries', () => {
    const parser = parse('[A]\n10 = a\n2 = b\n');
    assert.deepEqual(parser.itemEntries('A'), [
      ['10', 'a'],
      ['2', 'b'],
    ]);
  });

  it('strips a byte order mark and reads CRLF files', () => {
    assert.equal(parse('\ufeff[A]\r\nk = v\r\n  w\r\n').get('A', 'k'), 'v\nw');
  });
});

describe('ConfigParser read errors', () => {
  it('names file, line and the first line of a duplicate key', () => {
    const error = configError('DuplicateOptionError', () =>
      parse('[DEFAULT]\nram = 1G\n[Debian-12-server]\n# the size\nram = 2G\ncores = 2\nRAM = 3G\n'),
    );
    assert.equal(
      error.message.split(';')[0],
      `${FILE}:7: duplicate key 'ram' in section [Debian-12-server] (first set on line 5)`,
    );
    assert.deepEqual([error.file, error.line, error.section, error.option], [FILE, 7, 'Debian-12-server', 'ram']);
  });

  it('rejects a section twice in one file but not across files', () => {
    const error = configError('DuplicateSectionError', () => parse('[A]\n[B]\n[A]\n'));
    assert.match(
      error.message,
      /^\/etc\/image-factory\.conf:3: section \[A\] appears twice in this file \(first on line 1\)/,
    );
    const parser = parse('[A]\na = 1\n');
    parser.read('[A]\nb = 2\n', 'other.conf');
    assert.deepEqual(parser.items('A'), { a: '1', b: '2' });
  });

  it('rejects a key before any section header', () => {
    const error = configError('MissingSectionHeaderError', () => parse('# comment\nram = 1G\n[A]\n'));
    assert.match(error.message, /^\/etc\/image-factory\.conf:2: 'ram = 1G' comes before any \[section\] header/);
    assert.equal(error.line, 2);
  });

  it('reports every unreadable line, saying what is accepted', () => {
    const error = configError('ParsingError', () => parse('[A]\nflag\nk = v\n= value\n'));
    assert.equal(error.line, 2);
    const lines = error.message.split('\n');
    assert.equal(lines.length, 2);
    assert.match(
      lines[0],
      /^\/etc\/image-factory\.conf:2: cannot read 'flag': expected 'key = value', 'key: value', a \[section\] header/,
    );
    assert.match(lines[1], /^\/etc\/image-factory\.conf:4: cannot read '= value': the key is missing before '='/);
  });

  it('leaves the parser unchanged when a file fails', () => {
    const parser = parse('[A]\na = 1\n');
    configError('ParsingError', () => parser.read('[A]\na = 2\n[B]\nbad line\n', 'bad.conf'));
    assert.deepEqual(parser.sections(), ['A']);
    assert.equal(parser.get('A', 'a'), '1');
  });
});

describe('ConfigParser interpolation', () => {
  const text = [
    '[DEFAULT]',
    'mirror = http://deb.example/debian',
    'linux = ${mirror}/dists/${dist}/linux',
    '[Debian-12-server]',
    'dist = bookworm',
    'price = $$5 and $${mirror}',
    'upload = ${upload-host:target}/${dist}',
    '[upload-host]',
    'target = user@host:/srv',
    '',
  ].join('\n');

  it('expands ${key} late, in the section asked for, and $$ to $', () => {
    const parser = parse(text);
    assert.equal(parser.get('Debian-12-server', 'linux'), 'http://deb.example/debian/dists/bookworm/linux');
    assert.equal(parser.get('Debian-12-server', 'price'), '$5 and ${mirror}');
    assert.equal(parser.getRaw('Debian-12-server', 'linux'), '${mirror}/dists/${dist}/linux');
  });

  it('expands ${section:key} from another section', () => {
    assert.equal(parse(text).get('Debian-12-server', 'upload'), 'user@host:/srv/bookworm');
  });

  it('says which key refers to what, and where it is written', () => {
    const parser = parse('[X]\nram = 1G\nlinux = ${mirror}/linux\n', 'x.conf');
    const error = configError('InterpolationMissingOptionError', () => parser.get('X', 'linux'));
    assert.equal(
      error.message,
      "x.conf:3: in section [X], key 'linux': '${mirror}/linux' refers to 'mirror', which is set in neither [X] nor [DEFAULT].",
    );
    assert.deepEqual([error.file, error.line, error.section, error.option], ['x.conf', 3, 'X', 'linux']);
  });

  it('names a DEFAULT value that fails in a section, and the key that led there', () => {
    const parser = parse('[DEFAULT]\nlinux = ${mirror}/linux\n[X]\nkernel = ${linux}\n', 'x.conf');
    const error = configError('InterpolationMissingOptionError', () => parser.items('X'));
    assert.equal(
      error.message,
      "x.conf:2: in section [X], key 'linux' (from [DEFAULT]): '${mirror}/linux' refers to 'mirror', which is set in neither [X] nor [DEFAULT].",
    );
    const nested = configError('InterpolationMissingOptionError', () => parser.get('X', 'kernel'));
    assert.match(nested.message, /\(reached from \[X\] kernel\)\.$/);
  });

  it('reports a reference to a missing section', () => {
    const error = configError('InterpolationMissingOptionError', () =>
      parse('[A]\nk = ${Nowhere:key}\n').get('A', 'k'),
    );
    assert.match(error.message, /refers to 'Nowhere:key', but there is no section \[Nowhere\]\.$/);
  });

  it('reports a loop of references with the keys in it', () => {
    const parser = parse('[A]\nstart = ${a}\na = ${b}\nb = x${a}\n', 'loop.conf');
    const error = configError('InterpolationDepthError', () => parser.get('A', 'start'));
    assert.match(
      error.message,
      /^loop\.conf:3: key 'a' in section \[A\] refers back to itself: \[A\] a → \[A\] b → \[A\] a\.$/,
    );
    const self = configError('InterpolationDepthError', () => parse('[A]\nk = ${k}\n').get('A', 'k'));
    assert.match(self.message, /refers back to itself: \[A\] k → \[A\] k\.$/);
  });

  it('allows 10 levels of references and no more', () => {
    const chain = (length: number): string =>
      ['[S]', ...Array.from({ length }, (_, i) => `a${i} = \${a${i + 1}}`), `a${length} = $$end`].join('\n');
    assert.equal(parse(chain(9)).get('S', 'a0'), '$end');
    const error = configError('InterpolationDepthError', () => parse(chain(10)).get('S', 'a0'));
    assert.match(error.message, /references nest more than 10 levels deep: \[S\] a0 → /);
  });

  it('rejects a $ not followed by $ or {, and a reference with two colons', () => {
    const lone = configError('InterpolationSyntaxError', () => parse('[A]\nk = cost $5\n').get('A', 'k'));
    assert.match(
      lone.message,
      /^\/etc\/image-factory\.conf:2: in section \[A\], key 'k': 'cost \$5': a '\$' must be followed by '\$' or '\{'/,
    );
    assert.match(lone.message, /Write \$\{key\} for a key of the same section or \[DEFAULT\]/);
    const colons = configError('InterpolationSyntaxError', () => parse('[A]\nk = ${a:b:c}\n').get('A', 'k'));
    assert.match(colons.message, /more than one ':' in '\$\{a:b:c\}'/);
  });
});

describe('ConfigParser get, set and booleans', () => {
  it('throws NoSectionError and NoOptionError', () => {
    const parser = parse('[A]\na = 1\n');
    assert.match(
      configError('NoSectionError', () => parser.get('B', 'a')).message,
      /there is no section \[B\]; the sections are \[A\]/,
    );
    assert.match(configError('NoOptionError', () => parser.get('A', 'b')).message, /no key 'b' in section \[A\]/);
    assert.equal(parser.getRaw('A', 'b'), undefined);
    assert.equal(parser.getRaw('B', 'a'), undefined);
  });

  it('interpolates values given to set() and forgets their origin', () => {
    const parser = parse('[DEFAULT]\nmirror = http://a\n[A]\nlinux = ${mirror}/linux\n');
    parser.set('DEFAULT', 'Mirror', 'http://b');
    parser.set('A', 'extra', '  ${linux}  ');
    assert.equal(parser.get('A', 'linux'), 'http://b/linux');
    assert.equal(parser.get('A', 'extra'), '  http://b/linux  ');
    assert.equal(parser.origin('A', 'mirror'), undefined);
  });

  it('rejects set() with a bad $ and on a missing section', () => {
    const parser = parse('[A]\n');
    assert.match(
      configError('ValueError', () => parser.set('A', 'k', 'a $ b')).message,
      /a '\$' is not followed by '\$' or '\{\.\.\.\}'/,
    );
    configError('NoSectionError', () => parser.set('B', 'k', 'v'));
    configError('ValueError', () => parser.addSection('DEFAULT'));
    configError('DuplicateSectionError', () => parser.addSection('A'));
    parser.addSection('B');
    parser.set('B', 'k', 'v');
    assert.equal(parser.get('B', 'k'), 'v');
  });

  it('reads booleans like Python, and says which words are accepted', () => {
    const parser = parse('[A]\na = YES\nb = off\nc = 1\nd = maybe\n');
    assert.equal(parser.getBoolean('A', 'a'), true);
    assert.equal(parser.getBoolean('A', 'b'), false);
    assert.equal(parser.getBoolean('A', 'c'), true);
    assert.equal(parser.getBoolean('A', 'missing', true), true);
    assert.equal(parser.getBoolean('Nowhere', 'a', false), false);
    const error = configError('ValueError', () => parser.getBoolean('A', 'd', true));
    assert.equal(
      error.message,
      `${FILE}:5: in section [A], key 'd': 'maybe' is not a boolean; use 1, yes, true, on (true) or 0, no, false, off (false), in any case.`,
    );
    configError('NoOptionError', () => parser.getBoolean('A', 'missing'));
  });

  it('parseBoolean knows the eight words in any case and nothing else', () => {
    for (const word of ['1', 'yes', 'True', 'ON']) assert.equal(parseBoolean(word), true);
    for (const word of ['0', 'No', 'FALSE', 'off']) assert.equal(parseBoolean(word), false);
    for (const word of ['', ' yes', '2', 'y', 'enabled']) assert.equal(parseBoolean(word), undefined);
  });
});
