/**
 * Our ConfigParser against Python 3's configparser (ExtendedInterpolation)
 * on the same inputs: the same sections, keys, key order and values, and the
 * same error class wherever Python rejects a file or a section's items.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import {
  comparable,
  ourResultForFiles,
  ourResultForTexts,
  pythonResultForFiles,
  pythonResultsForTexts,
  type ReferenceCase,
  type ReferenceResult,
} from '../support/configparser-reference.js';
import { seededRandom } from '../support/seeded-random.js';

const UPSTREAM_CONF = join(process.cwd(), 'test', 'fixtures', 'upstream-image-factory.conf');

interface NamedCase extends ReferenceCase {
  name: string;
}

/** One file's text from its lines. */
function ini(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

/** a1 = ${a2}, ..., a<length> = last: a chain of `length - 1` references. */
function chain(length: number, last: string): string {
  const lines = ['[S]'];
  for (let i = 1; i < length; i += 1) lines.push(`a${i} = \${a${i + 1}}`);
  lines.push(`a${length} = ${last}`);
  return ini(...lines);
}

const TABLE: NamedCase[] = [
  { name: 'plain key and value', files: [ini('[A]', 'key = value')] },
  {
    name: 'both delimiters, with and without spaces',
    files: [ini('[A]', 'a=1', 'b:2', 'c = 3', 'd : 4', 'e\t=\t5', 'f  :   6  ')],
  },
  {
    name: 'the first delimiter of either kind splits',
    files: [ini('[A]', 'url = http://h:80/x', 'k: a=b', 'm=n:o', 'k2==v', 'k3 :: v')],
  },
  { name: 'keys are lowered, section names are not', files: [ini('[Sec]', 'Key = 1', 'OTHER: 2', '[sec]', 'KEY = 3')] },
  { name: 'a key twice in one section, differing in case', files: [ini('[A]', 'Key=1', 'key=2')] },
  { name: 'a section twice in one file', files: [ini('[A]', 'a=1', '[B]', '[A]', 'b=2')] },
  { name: 'DEFAULT twice in one file', files: [ini('[DEFAULT]', 'a=1', '[DEFAULT]', 'b=2', '[S]')] },
  { name: 'a key repeated across two DEFAULT blocks', files: [ini('[DEFAULT]', 'a=1', '[S]', '[DEFAULT]', 'a=2')] },
  {
    name: '[default] is an ordinary section',
    files: [ini('[DEFAULT]', 'a=1', '[default]', 'b=2', '[DEFAULT ]', 'c=3')],
  },
  { name: 'a key before any header', files: [ini('a=1', '[A]')] },
  {
    name: 'comments and blank lines before the first header',
    files: [ini('# c', '; c', '  # indented', '', '[A]', 'a=1')],
  },
  { name: 'only comments', files: [ini('# nothing', '; here')] },
  { name: 'an empty file', files: [''] },
  { name: 'text after the header is ignored', files: [ini('[A] trailing words', 'k=v', '[B] ; comment', 'j=w')] },
  { name: 'a ] inside a header', files: [ini('[a]b]', 'k=v', '[c]]', 'j=w')] },
  { name: 'a header followed by = is still a header', files: [ini('[A]=x', 'k=v', '[B] = y', 'j=w')] },
  { name: 'spaces inside a header are kept', files: [ini('[ spaced ]', 'k=v', '[two words]', 'j=w')] },
  { name: 'an empty header', files: [ini('[A]', '[]')] },
  { name: 'an empty header with a delimiter is a key', files: [ini('[A]', '[]=x', '[b=y')] },
  { name: 'a key without delimiter', files: [ini('[A]', 'flag', 'k=v')] },
  { name: 'an empty value', files: [ini('[A]', 'key =', 'other:', 'spaces =    ')] },
  { name: 'a value without key', files: [ini('[A]', '= value')] },
  { name: 'two values without key', files: [ini('[A]', '= a', ': b')] },
  { name: 'a bad line then a duplicate section', files: [ini('[A]', 'bad line', '[A]')] },
  { name: 'several bad lines', files: [ini('[A]', 'bad', 'k=v', 'worse')] },
  { name: 'continuation lines', files: [ini('[A]', 'k = a', '  b', '\tc', '        d', 'j = 1')] },
  { name: 'blank lines inside and after a value', files: [ini('[A]', 'k = a', '', '  b', '', '', 'j=1', '', '')] },
  { name: 'whitespace-only lines inside a value', files: [ini('[A]', 'k = a', '   \t ', '  b', '\f', '  c')] },
  { name: 'comments inside a value are dropped', files: [ini('[A]', 'k = a', '  # c', '  b', ' ; d', '# e', '  c')] },
  { name: 'an empty first line of a value', files: [ini('[A]', 'k =', '  a', '  b')] },
  {
    name: 'continuation depends on the indentation of the key line',
    files: [ini('[A]', '  k=1', '  j=2', '    deeper', 'm=3', '  n=4')],
  },
  { name: 'an indented header line continues a value', files: [ini('[A]', 'k=a', '  [B]', 'j=1')] },
  { name: 'an indented key line continues a value', files: [ini('[A]', 'k=a', '  x=y')] },
  { name: 'an indented header starts a section', files: [ini('  [A]', 'k=v', '\t[B]', '\tj=w')] },
  { name: 'indented key after a header', files: [ini('[A]', '', '   k=v', '   j=w', '     more')] },
  { name: 'no inline comments', files: [ini('[A]', 'k = v ; not a comment', 'j = v # neither', ';k = v', '#[B]')] },
  {
    name: 'unicode sections, keys and values',
    files: [ini('[Ünï]', 'Äpfel = ✓ Grüße', 'ΣΑΣ = x', 'ǅ = titlecase', 'İ = dotted')],
  },
  {
    name: 'Python whitespace is not JavaScript whitespace',
    files: [ini('[A]', 'k\x1c = v\x1f', 'j = \u00a0v\u00a0', 'm = v\ufeff', 'n\x85= \x85w')],
  },
  { name: 'only \\n ends a line', files: [ini('[A]', 'k = a\u2028b\x0bc\x85d\x0ce', '\u2028j = x')] },
  { name: 'unusual whitespace as indentation', files: [ini('[A]', 'k = a', '\u3000b', '\x0cc', '\x1cd')] },
  {
    name: 'keys that look like numbers keep their order',
    files: [ini('[DEFAULT]', 'z = 0', '[A]', '10 = a', '2 = b', 'x = c', '1 = d')],
  },
  { name: 'a key named __proto__', files: [ini('[A]', '__proto__ = x', 'constructor = y')] },
  { name: 'CRLF line ends', files: ['[A]\r\nk = a\r\n  b\r\n\r\nj = c\r\n'] },
  { name: 'CR line ends', files: ['[A]\rk = a\r  b\rj = c\r'] },
  { name: 'a byte order mark', files: ['\ufeff[A]\nk = v\n'] },
  { name: 'no newline at the end', files: ['[A]\nk = v\n  w'] },
  { name: '$$ is a literal $', files: [ini('[A]', 'price = $$5', 'both = $$${x}', 'x = 1', 'many = $$$$ $$${x}$$')] },
  { name: 'a lone $', files: [ini('[A]', 'k = cost $5', '[B]', 'ok = fine')] },
  { name: '$ at the end', files: [ini('[A]', 'k = a$')] },
  { name: 'an empty reference', files: [ini('[A]', 'k = ${}')] },
  { name: 'an unclosed reference', files: [ini('[A]', 'k = ${abc', 'abc = 1')] },
  { name: 'a reference with two colons', files: [ini('[A]', 'k = ${a:b:c}', '[a]', 'b = 1')] },
  { name: 'a section name with a colon cannot be referenced', files: [ini('[x:y]', 'k = 1', '[A]', 'j = ${x:y:k}')] },
  {
    name: 'references in the same section and DEFAULT',
    files: [ini('[DEFAULT]', 'root = /srv', '[A]', 'dir = ${root}/a', 'file = ${dir}/f')],
  },
  { name: 'a reference to another section', files: [ini('[A]', 'k = ${B:j}/x', '[B]', 'j = b', 'n = ${A:k}')] },
  {
    name: 'a reference to DEFAULT by name',
    files: [ini('[DEFAULT]', 'm = d', '[A]', 'm = a', 'k = ${DEFAULT:m} ${m}')],
  },
  { name: 'a reference to a missing key', files: [ini('[A]', 'k = ${nokey}', '[B]', 'j = fine')] },
  { name: 'a reference to a missing section', files: [ini('[A]', 'k = ${Nowhere:key}')] },
  { name: 'a reference to a missing key of another section', files: [ini('[A]', 'k = ${B:nokey}', '[B]', 'j = 1')] },
  { name: 'a key that refers to itself', files: [ini('[A]', 'k = ${k}')] },
  { name: 'two keys that refer to each other', files: [ini('[A]', 'a = ${b}', 'b = x${a}', 'c = fine')] },
  { name: 'a cycle across sections', files: [ini('[A]', 'a = ${B:b}', '[B]', 'b = ${A:a}')] },
  {
    name: 'DEFAULT values are expanded in each section',
    files: [ini('[DEFAULT]', 'path = ${base}/x', '[A]', 'base = /a', '[B]', 'base = /b', '[C]')],
  },
  {
    name: 'a key in DEFAULT and in the section',
    files: [ini('[DEFAULT]', 'a = 1', 'b = 2', 'c = 3', '[S]', 'd = 4', 'b = 20', 'e = ${b}')],
  },
  {
    name: 'a later file overrides an earlier one',
    files: [ini('[A]', 'a = 1', 'b = 2'), ini('[A]', 'c = 4', 'b = 3')],
  },
  {
    name: 'a later file may not repeat a section twice',
    files: [ini('[A]', 'a = 1'), ini('[A]', 'b = 2', '[A]', 'c = 3')],
  },
  { name: 'a later file with a key before any header', files: [ini('[A]', 'a = 1'), ini('b = 2', '[A]')] },
  {
    name: 'DEFAULT overridden by a later file',
    files: [ini('[DEFAULT]', 'a = 1', '[S]', 'v = ${a}'), ini('[DEFAULT]', 'a = 2')],
  },
  { name: 'three files', files: [ini('[A]', 'a=1'), ini('[B]', 'b=${A:a}'), ini('[A]', 'a=3', '[DEFAULT]', 'd=${a}')] },
  { name: 'references are not stripped', files: [ini('[A]', 'a = 1', 'k = ${ a }')] },
  {
    name: 'references are case-insensitive for keys only',
    files: [ini('[A]', 'Key = 1', 'k = ${KEY} ${A:KEY}', '[B]', 'j = ${a:key}')],
  },
  { name: 'a nested ${${a}}', files: [ini('[A]', 'a = b', 'k = ${${a}}')] },
  { name: 'a } in a value', files: [ini('[A]', 'k = {x} } ${a}}', 'a = 1')] },
  { name: 'a $$ inside a referenced value', files: [ini('[A]', 'a = $$HOME', 'k = ${a}/x')] },
  { name: 'a reference across continuation lines', files: [ini('[A]', 'k = ${a', '  b}', 'a = 1')] },
  {
    name: 'a cross-section value expands in its own section',
    files: [ini('[A]', 'x = A', 'v = ${B:w}', '[B]', 'x = B', 'w = ${x}')],
  },
  {
    name: 'a DEFAULT value expands in DEFAULT when named',
    files: [ini('[DEFAULT]', 'd = ${x}', '[A]', 'x = 1', 'v = ${DEFAULT:d}', 'w = ${d}')],
  },
  { name: 'a reference to an empty section name', files: [ini('[A]', 'k = ${:x}')] },
  { name: 'a reference to an empty key', files: [ini('[A]', 'k = ${A:}')] },
  { name: 'a chain of 9 references', files: [chain(10, 'end')] },
  { name: 'a chain of 10 references', files: [chain(11, 'end')] },
  { name: 'a chain of 10 references ending in $$', files: [chain(11, '$$')] },
  { name: 'a chain of 9 references ending in $$', files: [chain(10, '$$')] },
  { name: 'a chain of 11 references', files: [chain(12, 'end')] },
  { name: 'a chain of 10 references ending in a bad $', files: [chain(11, '$x')] },
  { name: 'a missing reference before a bad $', files: [ini('[A]', 'k = ${nope} $x')] },
  { name: 'a bad $ before a missing reference', files: [ini('[A]', 'k = $x ${nope}')] },
  {
    name: 'set() changes, adds and is interpolated',
    files: [ini('[DEFAULT]', 'ram = 1G', '[A]', 'a = 1', 'b = ${ram}')],
    sets: [
      ['A', 'a', 'two'],
      ['A', 'New', ' ${a} '],
      ['DEFAULT', 'ram', '2G'],
    ],
  },
  {
    name: 'set() on a key only in DEFAULT',
    files: [ini('[DEFAULT]', 'x = 1', 'y = 2', '[A]', 'a = 1')],
    sets: [['A', 'X', '9']],
  },
  { name: 'set() on a missing section', files: [ini('[A]')], sets: [['B', 'k', 'v']] },
  { name: 'set() with a bad $', files: [ini('[A]')], sets: [['A', 'k', 'a $ b']] },
  { name: 'set() checks the $ before the section', files: [ini('[A]')], sets: [['B', 'k', '$x']] },
  { name: 'set() with $$ and references', files: [ini('[A]', 'x = 1')], sets: [['A', 'k', '$$${x}${B:y}']] },
  { name: 'set() with two colons passes, items fails', files: [ini('[A]', 'x = 1')], sets: [['A', 'k', '${a:b:c}']] },
  { name: 'set() on the empty section name means DEFAULT', files: [ini('[A]', 'x = 1')], sets: [['', 'D', 'd']] },
  { name: 'set() with an empty value', files: [ini('[A]', 'x = 1')], sets: [['A', 'x', '']] },
];

const randomSource = seededRandom;

const SECTION_NAMES = ['A', 'B', 'Sec One', 'DEFAULT', 'default', 'x:y', 'Debian-12-server', 'Ünï', '10'];
const KEYS = [
  'key',
  'KEY',
  'Key',
  'mirror',
  'path',
  'a',
  'b',
  'B',
  'c',
  'ünï',
  'x y',
  '10',
  '2',
  'ram',
  'dist',
  'linux',
];
const VALUES = [
  'plain',
  '',
  '${key}',
  '${KEY}',
  '${a}',
  '${b}/x',
  '${A:key}',
  '${A:Key}',
  '${B:a}',
  '${DEFAULT:mirror}',
  '${mirror}/dists/${dist}/linux',
  '$$',
  '$$${a}',
  '$${a}',
  'http://h:80/p?q=1',
  'x = y',
  'yes',
  'Off',
  'ünïcødé ✓',
  '${Sec One:a}',
  '${Ünï:ünï}',
  '${ram}',
  '${linux}',
  '1G',
];
// Values that make any section using them fail; picked less often, so that
// most sections get through interpolation.
const BAD_VALUES = ['$', '$x', '${', '${}', '${a:b:c}', '${missing:x}', '${nokey}'];
const DELIMITERS = ['=', ':', ' = ', ' : ', '\t=\t', '  :', '= ', ' =', '=  '];
const INDENTS = [' ', '  ', '\t', '    ', ' \t'];

function generatedCases(count: number, seed: number): NamedCase[] {
  const random = randomSource(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const chance = (p: number): boolean => random() < p;

  const value = (): string => (chance(0.08) ? pick(BAD_VALUES) : pick(VALUES));

  const optionLine = (keys: string[]): string => {
    // Mostly fresh keys, so that not every case ends in DuplicateOptionError.
    let key = pick(KEYS);
    for (let tries = 0; tries < 5 && keys.includes(key.toLowerCase()) && !chance(0.05); tries += 1) key = pick(KEYS);
    keys.push(key.toLowerCase());
    const indent = chance(0.1) ? pick(INDENTS) : '';
    return `${indent}${key}${pick(DELIMITERS)}${value()}`;
  };

  const file = (): string => {
    const lines: string[] = [];
    if (chance(0.3)) lines.push(pick(['# header comment', '; another', '', '  # indented']));
    if (chance(0.02)) lines.push('orphan = 1');
    const used: string[] = [];
    if (chance(0.4)) {
      // Plain defaults, so that many references resolve.
      lines.push('[DEFAULT]');
      used.push('DEFAULT');
      for (const key of ['key', 'a', 'b', 'mirror', 'dist', 'ram', 'linux'])
        if (chance(0.6)) lines.push(`${key} = ${key}-value`);
    }
    const sectionCount = 1 + Math.floor(random() * 4);
    for (let s = 0; s < sectionCount; s += 1) {
      let name = pick(SECTION_NAMES);
      for (let tries = 0; tries < 5 && used.includes(name) && !chance(0.1); tries += 1) name = pick(SECTION_NAMES);
      used.push(name);
      const decoration = chance(0.08) ? pick([' trailing', ' ; note', ']', '=x']) : '';
      lines.push(`${chance(0.05) ? pick(INDENTS) : ''}[${name}]${decoration}`);
      const keys: string[] = [];
      const lineCount = Math.floor(random() * 7);
      for (let l = 0; l < lineCount; l += 1) {
        const kind = random();
        if (kind < 0.55) lines.push(optionLine(keys));
        else if (kind < 0.65) lines.push(`${chance(0.3) ? pick(INDENTS) : ''}${pick(['#', ';'])} comment`);
        else if (kind < 0.75) lines.push(pick(['', '   ', '\t']));
        else if (kind < 0.92) {
          // A stray indented line is a parsing error; mostly continue a value.
          if (keys.length > 0 || chance(0.1)) {
            lines.push(`${pick(INDENTS)}${chance(0.8) ? value() : pick(['# in value', '; in value', '[B]', 'k = v'])}`);
          }
        } else if (kind < 0.94) lines.push(pick(['bare words', '= novalue', '[]', 'flag']));
        else lines.push(pick(['k==v', 'k::v', '[]=x']));
      }
    }
    return lines.join(pick(['\n', '\n', '\n', '\r\n'])) + (chance(0.9) ? '\n' : '');
  };

  const cases: NamedCase[] = [];
  for (let n = 0; n < count; n += 1) {
    const files = Array.from({ length: 1 + Math.floor(random() * 3) }, file);
    const generated: NamedCase = { name: `generated case ${n}`, files };
    if (chance(0.15)) {
      generated.sets = Array.from({ length: 1 + Math.floor(random() * 2) }, () => [
        pick(['A', 'B', 'DEFAULT', 'Sec One']),
        pick(KEYS),
        value(),
      ]);
    }
    cases.push(generated);
  }
  return cases;
}

const CASES: NamedCase[] = [...TABLE, ...generatedCases(400, 20240611)];

describe('configparser matches Python 3 configparser with ExtendedInterpolation', () => {
  let python: ReferenceResult[] = [];
  before(() => {
    python = pythonResultsForTexts(CASES.map(({ files, sets }) => ({ files, sets })));
  });

  it('reads the original image-factory.conf like Python', () => {
    const expected = pythonResultForFiles([UPSTREAM_CONF]);
    assert.equal(expected.ok, true);
    assert.deepStrictEqual(comparable(ourResultForFiles([UPSTREAM_CONF])), comparable(expected));
  });

  it('applies overrides to the original image-factory.conf like Python', () => {
    const sets: Array<[string, string, string]> = [
      ['DEFAULT', 'debian_mirror', 'http://deb.example/debian'],
      ['Debian-10-server', 'ram', '4G'],
      ['Debian-10-server', 'dist', '${DEFAULT:cores}-$$'],
    ];
    assert.deepStrictEqual(
      comparable(ourResultForFiles([UPSTREAM_CONF], sets)),
      comparable(pythonResultForFiles([UPSTREAM_CONF], sets)),
    );
  });

  it('fails on a missing file like Python', () => {
    const missing = join(process.cwd(), 'test', 'fixtures', 'no-such-file.conf');
    assert.deepStrictEqual(ourResultForFiles([UPSTREAM_CONF, missing]), pythonResultForFiles([UPSTREAM_CONF, missing]));
  });

  it('exercises every error Python can raise here', () => {
    const seen = new Set<string>();
    for (const result of python) {
      if (!result.ok) seen.add(result.error);
      else
        for (const items of Object.values(result.sections)) if (typeof items.error === 'string') seen.add(items.error);
    }
    for (const kind of [
      'DuplicateSectionError',
      'DuplicateOptionError',
      'MissingSectionHeaderError',
      'ParsingError',
      'InterpolationMissingOptionError',
      'InterpolationDepthError',
      'InterpolationSyntaxError',
      'NoSectionError',
      'ValueError',
    ]) {
      assert.ok(seen.has(kind), `no case makes Python raise ${kind}`);
    }
    const accepted = python.filter((result) => result.ok).length;
    assert.ok(accepted > CASES.length / 3, `only ${accepted} of ${CASES.length} cases are accepted`);
  });

  CASES.forEach((testCase, index) => {
    it(testCase.name, () => {
      assert.deepStrictEqual(
        comparable(ourResultForTexts(testCase)),
        comparable(python[index]),
        JSON.stringify(testCase),
      );
    });
  });
});
