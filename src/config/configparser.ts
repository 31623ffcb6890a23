import { redactUrisIn } from '../common/credentials.js';
import { UsageError } from './usage-error.js';

/**
 * INI reading with the exact semantics of Python 3.11's
 * `configparser.ConfigParser(interpolation=ExtendedInterpolation())` and
 * default options, so that files written for the original image-factory mean
 * the same here. test/tools/configparser-differential.test.ts checks this
 * against python3 itself; where Python behaves oddly, so does this module.
 */

export type ConfigErrorKind =
  | 'DuplicateSectionError'
  | 'DuplicateOptionError'
  | 'MissingSectionHeaderError'
  | 'ParsingError'
  | 'InterpolationMissingOptionError'
  | 'InterpolationDepthError'
  | 'InterpolationSyntaxError'
  // Not in Python, which runs out of memory instead: a value whose references fan out past a bound.
  | 'InterpolationSizeError'
  | 'NoSectionError'
  | 'NoOptionError'
  // Python raises a plain ValueError for these: a bad `$` in set(), a value
  // that is not a boolean, and add_section('DEFAULT').
  | 'ValueError';

export interface ConfigOrigin {
  file: string;
  /** 1-based line of the key (the first line of a multi-line value). */
  line: number;
  /** The 1-based line of each line of the value, in order (comment lines inside a value are skipped). */
  valueLines?: number[];
}

export interface ConfigErrorLocation {
  file?: string;
  line?: number;
  section?: string;
  option?: string;
}

/**
 * A configuration that cannot be read as written: bad input, so a UsageError
 * (exit 2). The message starts with file:line when the error knows them.
 */
export class ConfigError extends UsageError {
  /** The name of the exception Python's configparser raises in the same case. */
  readonly kind: ConfigErrorKind;
  readonly file?: string;
  readonly line?: number;
  readonly section?: string;
  readonly option?: string;

  constructor(kind: ConfigErrorKind, message: string, where: ConfigErrorLocation = {}) {
    const at = where.file !== undefined && where.line !== undefined ? `${where.file}:${where.line}: ` : '';
    super(at && !message.includes(at) ? `${at}${message}` : message);
    this.name = 'ConfigError';
    this.kind = kind;
    this.file = where.file;
    this.line = where.line;
    this.section = where.section;
    this.option = where.option;
  }
}

export const DEFAULT_SECTION = 'DEFAULT';
/** configparser.MAX_INTERPOLATION_DEPTH */
const MAX_INTERPOLATION_DEPTH = 10;
/**
 * Bounds of one interpolated value: its length, and how many references are
 * expanded to make it. Ten keys of ten references each make 10^10 of them
 * from a few lines; Python then spends minutes and gigabytes before it fails.
 */
export const MAX_INTERPOLATED_LENGTH = 64 * 1024;
export const MAX_INTERPOLATED_REFERENCES = 10_000;
/**
 * The same for all the values of a section together (items()): ten thousand
 * keys that each reach a value at the bound above would otherwise take
 * 10^8 expansions and 640 MiB, from a file of a few hundred KB.
 */
export const MAX_SECTION_INTERPOLATED_LENGTH = 16 * 2 ** 20;
export const MAX_SECTION_INTERPOLATED_REFERENCES = 200_000;

interface Budget {
  length: number;
  references: number;
}

/** RawConfigParser.BOOLEAN_STATES */
const BOOLEAN_STATES: ReadonlyMap<string, boolean> = new Map([
  ['1', true],
  ['yes', true],
  ['true', true],
  ['on', true],
  ['0', false],
  ['no', false],
  ['false', false],
  ['off', false],
]);
const BOOLEAN_WORDS = '1, yes, true, on (true) or 0, no, false, off (false), in any case';

/** Python's getboolean(): the value itself is not stripped. */
export function parseBoolean(value: string): boolean | undefined {
  return BOOLEAN_STATES.get(value.toLowerCase());
}

// Python's str.strip() and regex \s use str.isspace(), which differs from
// JavaScript's \s and trim(): it includes \x1c-\x1f and \x85, and not \ufeff.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const NON_SPACE = new RegExp(`[^${PY_SPACE}]`);

function isPySpace(code: number): boolean {
  return (
    (code >= 0x09 && code <= 0x0d) ||
    (code >= 0x1c && code <= 0x20) ||
    code === 0x85 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

// Stripped by walking in from the ends: a pattern such as /\s+$/ is tried at every blank of a run
// and scans the run each time, which takes seconds on a line of a few thousand blanks.
function pyStrip(text: string): string {
  let start = 0;
  while (start < text.length && isPySpace(text.charCodeAt(start))) start += 1;
  return pyRstrip(text.slice(start));
}

function pyRstrip(text: string): string {
  let end = text.length;
  while (end > 0 && isPySpace(text.charCodeAt(end - 1))) end -= 1;
  return text.slice(0, end);
}

/** optionxform: keys are case-insensitive, section names are not. */
function optionxform(key: string): string {
  return key.toLowerCase();
}

// SECTCRE is matched at the start only: what follows the last `]` on the
// line is ignored, and `[a]b]` names the section `a]b`.
const SECTION_HEADER = /^\[(.+)\]/s;
/**
 * OPTCRE, `(.*?)\\s*(=|:)\\s*(.*)$`: the first `=` or `:` splits, the blanks
 * around it are dropped. Found with indexOf: the pattern itself backtracks
 * over a long run of blanks once for every blank in it.
 */
function splitOptionLine(line: string): { key: string; delimiter: string; value: string } | undefined {
  const equals = line.indexOf('=');
  const colon = line.indexOf(':');
  const at = equals < 0 ? colon : colon < 0 ? equals : Math.min(equals, colon);
  if (at < 0) return undefined;
  return { key: pyRstrip(line.slice(0, at)), delimiter: line[at], value: pyStrip(line.slice(at + 1)) };
}
const COMMENT_PREFIXES = ['#', ';'];
// ExtendedInterpolation._KEYCRE; `[^}]` also matches newlines, as in Python.
const REFERENCE = /^\$\{([^}]+)\}/;

const SYNTAX_HELP =
  "Write ${key} for a key of the same section or [DEFAULT], ${section:key} for another section's key, and $$ for a literal $.";

/**
 * What set() refuses in a value (as Python's does), or undefined: a `$` that
 * is not `$$` or a `${...}` reference. For values given on the command line
 * or as inputs, which are interpolated like the files' values.
 */
export function dollarProblem(value: string): string | undefined {
  // Python: value.replace('$$', ''), then _KEYCRE.sub('', …), then any '$' left is wrong. Scanned once
  // here: the pattern, tried at each '$' of a long '${${${…' without a '}', reads to the end every time.
  const unescaped = value.replaceAll('$$', '');
  for (let at = unescaped.indexOf('$'); at >= 0; at = unescaped.indexOf('$', at)) {
    const close = unescaped[at + 1] === '{' ? unescaped.indexOf('}', at + 2) : -1;
    if (close <= at + 2) return `a '$' is not followed by '$' or '{...}'. ${SYNTAX_HELP}`;
    at = close + 1;
  }
  return undefined;
}

interface StoredValue {
  value: string;
  /** Undefined for values given through set(). */
  origin?: ConfigOrigin;
}

type SectionTable = Map<string, StoredValue>;

/**
 * A section's values over [DEFAULT]'s (Python's ChainMap in _unify_values),
 * looked up in both without copying either: a lookup costs the same in a
 * section of ten keys and of ten thousand.
 */
class SectionChain {
  constructor(
    private readonly own: SectionTable | undefined,
    private readonly defaults: SectionTable,
  ) {}

  get(option: string): StoredValue | undefined {
    return this.own?.get(option) ?? this.defaults.get(option);
  }

  /** [DEFAULT]'s keys first, then the section's own; a key in both keeps DEFAULT's place and the section's value. */
  entries(): Array<[string, StoredValue]> {
    const merged = new Map(this.defaults);
    for (const [key, stored] of this.own ?? []) merged.set(key, stored);
    return [...merged];
  }
}

interface Reference {
  section: string;
  option: string;
}

/** A value for a message: quoted, newlines shown as \n, passwords in URIs masked. */
function quote(text: string): string {
  return `'${redactUrisIn(text).replace(/\n/g, '\\n')}'`;
}

function at(origin: ConfigOrigin | undefined): string {
  return origin ? `${origin.file}:${origin.line}: ` : '';
}

function sameReference(a: Reference, b: Reference): boolean {
  return a.section === b.section && a.option === b.option;
}

export class ConfigParser {
  private defaultTable: SectionTable = new Map();
  private sectionTables = new Map<string, SectionTable>();

  /**
   * Parse one file's text (RawConfigParser._read) and merge it into what was
   * read before. `source` names the file in errors. Unlike Python, a file
   * that fails leaves the parser unchanged.
   *
   * Long: one pass over the lines with the same state and in the same order
   * as Python's _read, so that the two can be compared line by line (the
   * differential tests do); split up, that state would be spread thin.
   */
  read(text: string, source: string): void {
    const defaults: SectionTable = new Map(this.defaultTable);
    const sections = new Map<string, SectionTable>();
    for (const [name, table] of this.sectionTables) sections.set(name, new Map(table));

    // A byte order mark is not text; Node's readFileSync keeps it, Python's utf-8-sig drops it.
    const body = text.startsWith('\ufeff') ? text.slice(1) : text;
    // Python reads files with universal newlines.
    const lines = body.replace(/\r\n?/g, '\n').split('\n');
    if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();

    // strict=True: what this file added, to reject duplicates within it.
    const sectionsAdded = new Map<string, number>();
    const optionsAdded = new Map<string, number>();
    const pending: Array<{ entry: StoredValue; parts: string[]; partLines: number[] }> = [];
    const badLines: Array<{ line: number; text: string; reason: string }> = [];

    let current: SectionTable | undefined;
    let sectionName = '';
    // The value that indented lines continue; Python's `optname`.
    let continued: string[] | undefined;
    let continuedLines: number[] = [];
    let indentLevel = 0;

    lines.forEach((line, index) => {
      const lineNumber = index + 1;
      const stripped = pyStrip(line);
      const isComment = COMMENT_PREFIXES.some((prefix) => stripped.startsWith(prefix));
      if (isComment || stripped === '') {
        // empty_lines_in_values: a blank (not comment) line belongs to the
        // value; trailing ones are dropped when the lines are joined.
        if (!isComment && current && continued) {
          continued.push('');
          continuedLines.push(lineNumber);
        }
        return;
      }
      const firstNonSpace = NON_SPACE.exec(line);
      const indent = firstNonSpace ? firstNonSpace.index : 0;
      if (current && continued && indent > indentLevel) {
        continued.push(stripped);
        continuedLines.push(lineNumber);
        return;
      }
      indentLevel = indent;

      const header = SECTION_HEADER.exec(stripped);
      if (header) {
        const name = header[1];
        const existing = sections.get(name);
        if (existing) {
          const first = sectionsAdded.get(name);
          if (first !== undefined) {
            throw new ConfigError(
              'DuplicateSectionError',
              `${source}:${lineNumber}: section [${name}] appears twice in this file (first on line ${first}); ` +
                'merge the two, or move one into a later file to override the earlier one.',
              { file: source, line: lineNumber, section: name },
            );
          }
          current = existing;
          sectionsAdded.set(name, lineNumber);
        } else if (name === DEFAULT_SECTION) {
          // A second [DEFAULT] in one file is allowed; its keys still may not repeat.
          current = defaults;
        } else {
          current = new Map();
          sections.set(name, current);
          sectionsAdded.set(name, lineNumber);
        }
        sectionName = name;
        continued = undefined;
        return;
      }

      if (!current) {
        throw new ConfigError(
          'MissingSectionHeaderError',
          `${source}:${lineNumber}: ${quote(stripped)} comes before any [section] header; ` +
            'every key must be inside a section (keys under [DEFAULT] apply to all sections).',
          { file: source, line: lineNumber },
        );
      }

      const option = splitOptionLine(stripped);
      if (!option) {
        // Python reports all such lines at the end of the file, unless
        // another error stops it first.
        badLines.push({
          line: lineNumber,
          text: stripped,
          reason: "expected 'key = value', 'key: value', a [section] header, or a comment line starting with # or ;",
        });
        return;
      }
      const name = optionxform(option.key);
      if (name === '') {
        // Python records the error but still stores the value under ''.
        badLines.push({ line: lineNumber, text: stripped, reason: `the key is missing before '${option.delimiter}'` });
      }
      const addedKey = JSON.stringify([sectionName, name]);
      const first = optionsAdded.get(addedKey);
      if (first !== undefined) {
        throw new ConfigError(
          'DuplicateOptionError',
          `${source}:${lineNumber}: duplicate key '${name}' in section [${sectionName}] (first set on line ${first}); ` +
            'keys are case-insensitive, and a key may be set once per section in a file (a later file may override it).',
          { file: source, line: lineNumber, section: sectionName, option: name },
        );
      }
      optionsAdded.set(addedKey, lineNumber);
      const entry: StoredValue = { value: '', origin: { file: source, line: lineNumber } };
      const parts = [option.value];
      const partLines = [lineNumber];
      current.set(name, entry);
      pending.push({ entry, parts, partLines });
      // An empty key name (Python's falsy optname) takes no continuation lines.
      continued = name === '' ? undefined : parts;
      continuedLines = partLines;
    });

    for (const { entry, parts, partLines } of pending) {
      entry.value = pyRstrip(parts.join('\n'));
      // The value loses its trailing blank lines (Python's rstrip): so do their line numbers.
      const kept = partLines.slice(0, entry.value.split('\n').length);
      if (entry.origin && kept.length > 1) entry.origin.valueLines = kept;
    }

    if (badLines.length > 0) {
      const first = badLines[0];
      const message = badLines
        .map((bad) => `${source}:${bad.line}: cannot read ${quote(bad.text)}: ${bad.reason}`)
        .join('\n');
      throw new ConfigError('ParsingError', message, { file: source, line: first.line });
    }

    this.defaultTable = defaults;
    this.sectionTables = sections;
  }

  /** Section names in first-seen order, without DEFAULT. */
  sections(): string[] {
    return [...this.sectionTables.keys()];
  }

  hasSection(name: string): boolean {
    return this.sectionTables.has(name);
  }

  /** True when the key is in the section or in [DEFAULT]; '' means DEFAULT, as in Python. */
  hasOption(section: string, key: string): boolean {
    const name = optionxform(key);
    if (section === '' || section === DEFAULT_SECTION) return this.defaultTable.has(name);
    const table = this.sectionTables.get(section);
    if (!table) return false;
    return table.has(name) || this.defaultTable.has(name);
  }

  addSection(name: string): void {
    if (name === DEFAULT_SECTION) {
      throw new ConfigError('ValueError', `[${DEFAULT_SECTION}] always exists and cannot be added as a section.`, {
        section: name,
      });
    }
    if (this.sectionTables.has(name)) {
      throw new ConfigError('DuplicateSectionError', `section [${name}] already exists.`, { section: name });
    }
    this.sectionTables.set(name, new Map());
  }

  /**
   * Set a raw value, interpolated like any other when read. The section must
   * exist, except DEFAULT (or ''). The value is checked for `$` syntax first,
   * as Python does, and is stored as given (not stripped).
   */
  set(section: string, key: string, value: string): void {
    const problem = dollarProblem(value);
    if (problem !== undefined) {
      throw new ConfigError('ValueError', `cannot set [${section}] ${key} to ${quote(value)}: ${problem}`, {
        section,
        option: optionxform(key),
      });
    }
    let table: SectionTable;
    if (section === '' || section === DEFAULT_SECTION) {
      table = this.defaultTable;
    } else {
      const found = this.sectionTables.get(section);
      if (!found) throw this.noSection(section);
      table = found;
    }
    table.set(optionxform(key), { value });
  }

  /** The interpolated value; throws NoSectionError, NoOptionError or an interpolation error. */
  get(section: string, key: string): string {
    const map = this.lookupTable(section);
    if (!map) throw this.noSection(section);
    const option = optionxform(key);
    const stored = map.get(option);
    if (!stored) {
      const where =
        section === DEFAULT_SECTION ? `[${DEFAULT_SECTION}]` : `section [${section}] (nor in [${DEFAULT_SECTION}])`;
      throw new ConfigError('NoOptionError', `no key '${option}' in ${where}.`, { section, option });
    }
    return this.interpolate(section, option, stored.value, map);
  }

  /** The value as written (no interpolation), or undefined when absent. */
  getRaw(section: string, key: string): string | undefined {
    return this.lookupTable(section)?.get(optionxform(key))?.value;
  }

  /** A boolean value; `fallback` applies only when the section or key is absent. */
  getBoolean(section: string, key: string, fallback?: boolean): boolean {
    let value: string;
    try {
      value = this.get(section, key);
    } catch (error) {
      const absent =
        error instanceof ConfigError && (error.kind === 'NoSectionError' || error.kind === 'NoOptionError');
      if (absent && fallback !== undefined) return fallback;
      throw error;
    }
    const result = parseBoolean(value);
    if (result === undefined) {
      const origin = this.origin(section, key);
      throw new ConfigError(
        'ValueError',
        `${at(origin)}in section [${section}], key '${optionxform(key)}': ${quote(value)} is not a boolean; use ${BOOLEAN_WORDS}.`,
        { file: origin?.file, line: origin?.line, section, option: optionxform(key) },
      );
    }
    return result;
  }

  /**
   * items(section): [DEFAULT]'s keys first, then the section's own, each
   * interpolated. A key in both keeps DEFAULT's position and the section's value.
   */
  items(section: string): Record<string, string> {
    return Object.fromEntries(this.itemEntries(section));
  }

  /** items() as pairs: keeps Python's order even for keys like '10' that objects reorder. */
  itemEntries(section: string): Array<[string, string]> {
    const map = this.lookupTable(section);
    if (!map) throw this.noSection(section);
    const used: Budget = { length: 0, references: 0 };
    return map.entries().map(([option, stored]) => {
      const budget: Budget = { length: 0, references: 0 };
      const value = this.interpolate(section, option, stored.value, map, budget);
      used.length += budget.length;
      used.references += budget.references;
      if (used.length > MAX_SECTION_INTERPOLATED_LENGTH || used.references > MAX_SECTION_INTERPOLATED_REFERENCES)
        throw this.sectionSizeError(section, option);
      return [option, value];
    });
  }

  /** Where the effective raw value was read; undefined for values given to set(). */
  origin(section: string, key: string): ConfigOrigin | undefined {
    return this.lookupTable(section)?.get(optionxform(key))?.origin;
  }

  /** The keys set in the section itself (not those it inherits from [DEFAULT]), in order. */
  ownKeys(section: string): string[] {
    return [...(this.sectionTables.get(section)?.keys() ?? [])];
  }

  /** The raw [DEFAULT] values. */
  defaults(): Record<string, string> {
    return Object.fromEntries([...this.defaultTable].map(([key, stored]) => [key, stored.value]));
  }

  /** A section over [DEFAULT] (Python's items()/_unify_values), or undefined when it does not exist. */
  private lookupTable(section: string): SectionChain | undefined {
    if (section === DEFAULT_SECTION) return new SectionChain(undefined, this.defaultTable);
    const table = this.sectionTables.get(section);
    return table ? new SectionChain(table, this.defaultTable) : undefined;
  }

  private noSection(section: string): ConfigError {
    const known = this.sections();
    const list =
      known.length > 0 ? `; the sections are ${known.map((name) => `[${name}]`).join(', ')}` : '; there are none';
    return new ConfigError('NoSectionError', `there is no section [${section}]${list}.`, { section });
  }

  private interpolate(
    section: string,
    option: string,
    value: string,
    map: SectionChain,
    budget: Budget = { length: 0, references: 0 },
  ): string {
    const accum: string[] = [];
    this.expand({ section, option }, value, map, 1, accum, [], budget);
    return accum.join('');
  }

  /** ExtendedInterpolation._interpolate_some, step for step, so that errors come in the same order. */
  private expand(
    here: Reference,
    value: string,
    map: SectionChain,
    depth: number,
    accum: string[],
    chain: Reference[],
    budget: Budget,
  ): void {
    const path = [...chain, here];
    if (depth > MAX_INTERPOLATION_DEPTH) throw this.depthError(path);
    const push = (text: string): void => {
      budget.length += text.length;
      if (budget.length > MAX_INTERPOLATED_LENGTH)
        throw this.sizeError(path, `grows beyond ${MAX_INTERPOLATED_LENGTH} characters as its references are expanded`);
      accum.push(text);
    };
    let rest = value;
    while (rest !== '') {
      const p = rest.indexOf('$');
      if (p < 0) {
        push(rest);
        return;
      }
      if (p > 0) {
        push(rest.slice(0, p));
        rest = rest.slice(p);
      }
      const next = rest.slice(1, 2);
      if (next === '$') {
        push('$');
        rest = rest.slice(2);
        continue;
      }
      if (next !== '{') {
        throw this.syntaxError(path, map, `a '$' must be followed by '$' or '{', found ${quote(rest)}`);
      }
      const match = REFERENCE.exec(rest);
      if (!match)
        throw this.syntaxError(path, map, `${quote(rest)} starts a reference that is empty or has no closing '}'`);
      rest = rest.slice(match[0].length);
      budget.references += 1;
      if (budget.references > MAX_INTERPOLATED_REFERENCES)
        throw this.sizeError(path, `takes more than ${MAX_INTERPOLATED_REFERENCES} reference expansions`);
      const parts = match[1].split(':');
      if (parts.length > 2) throw this.syntaxError(path, map, `more than one ':' in ${quote(match[0])}`);
      const target: Reference =
        parts.length === 1
          ? { section: here.section, option: optionxform(parts[0]) }
          : { section: parts[0], option: optionxform(parts[1]) };
      const targetMap = parts.length === 1 ? map : this.lookupTable(target.section);
      const found = targetMap?.get(target.option);
      if (!targetMap || !found) throw this.missingError(path, map, match[1], target);
      if (found.value.includes('$')) {
        this.expand(target, found.value, targetMap, depth + 1, accum, path, budget);
      } else {
        push(found.value);
      }
    }
  }

  /** "file:line: in section [S], key 'k'" for the value being expanded. */
  private describe(here: Reference, map: SectionChain): { prefix: string; where: ConfigErrorLocation } {
    const stored = map.get(here.option);
    const inherited =
      here.section !== DEFAULT_SECTION &&
      !this.sectionTables.get(here.section)?.has(here.option) &&
      stored !== undefined;
    const prefix =
      `${at(stored?.origin)}in section [${here.section}], key '${here.option}'` +
      `${inherited ? ` (from [${DEFAULT_SECTION}])` : ''}: ${quote(stored?.value ?? '')}`;
    return {
      prefix,
      where: { file: stored?.origin?.file, line: stored?.origin?.line, section: here.section, option: here.option },
    };
  }

  private reachedFrom(path: Reference[]): string {
    if (path.length < 2) return '';
    return ` (reached from ${path
      .slice(0, -1)
      .map((step) => `[${step.section}] ${step.option}`)
      .join(' → ')})`;
  }

  private missingError(path: Reference[], map: SectionChain, reference: string, target: Reference): ConfigError {
    const here = path[path.length - 1];
    const { prefix, where } = this.describe(here, map);
    let problem: string;
    if (target.section !== DEFAULT_SECTION && !this.sectionTables.has(target.section)) {
      problem = `, but there is no section [${target.section}]`;
    } else if (target.section === DEFAULT_SECTION) {
      problem = `, but '${target.option}' is not set in [${DEFAULT_SECTION}]`;
    } else {
      const key = reference.includes(':') ? `, but '${target.option}'` : ', which';
      problem = `${key} is set in neither [${target.section}] nor [${DEFAULT_SECTION}]`;
    }
    return new ConfigError(
      'InterpolationMissingOptionError',
      `${prefix} refers to '${reference}'${problem}${this.reachedFrom(path)}.`,
      where,
    );
  }

  private syntaxError(path: Reference[], map: SectionChain, problem: string): ConfigError {
    const { prefix, where } = this.describe(path[path.length - 1], map);
    return new ConfigError(
      'InterpolationSyntaxError',
      `${prefix}: ${problem}${this.reachedFrom(path)}. ${SYNTAX_HELP}`,
      where,
    );
  }

  /** A value too big to be meant: named by the key being read, and the keys that were being expanded. */
  private sizeError(path: Reference[], problem: string): ConfigError {
    const first = path[0];
    const origin = this.lookupTable(first.section)?.get(first.option)?.origin;
    const steps = path.map((step) => `[${step.section}] ${step.option}`).join(' → ');
    return new ConfigError(
      'InterpolationSizeError',
      `${at(origin)}in section [${first.section}], key '${first.option}': the value ${problem} (at ${steps}); ` +
        `a value may be at most ${MAX_INTERPOLATED_LENGTH / 1024} KiB, made with at most ` +
        `${MAX_INTERPOLATED_REFERENCES} reference expansions.`,
      { file: origin?.file, line: origin?.line, section: first.section, option: first.option },
    );
  }

  /** A section whose values together are too big to be meant, named by the key where the bound was passed. */
  private sectionSizeError(section: string, option: string): ConfigError {
    const origin = this.lookupTable(section)?.get(option)?.origin;
    return new ConfigError(
      'InterpolationSizeError',
      `${at(origin)}in section [${section}], key '${option}': the section's values, their references expanded, ` +
        `come to more than ${MAX_SECTION_INTERPOLATED_LENGTH / 2 ** 20} MiB or take more than ` +
        `${MAX_SECTION_INTERPOLATED_REFERENCES} reference expansions in all; a section's values may take at most that.`,
      { file: origin?.file, line: origin?.line, section, option },
    );
  }

  private depthError(path: Reference[]): ConfigError {
    // Name the loop when there is one, from the first key that comes back:
    // that is what the user has to fix.
    let loop = path;
    for (let i = 0; i < path.length && loop === path; i += 1) {
      const again = path.findIndex((step, j) => j > i && sameReference(step, path[i]));
      if (again > 0) loop = path.slice(i, again + 1);
    }
    const steps = loop.map((step) => `[${step.section}] ${step.option}`).join(' → ');
    const first = loop[0];
    const origin = this.lookupTable(first.section)?.get(first.option)?.origin;
    const problem =
      loop !== path
        ? `key '${first.option}' in section [${first.section}] refers back to itself: ${steps}`
        : `references nest more than ${MAX_INTERPOLATION_DEPTH} levels deep: ${steps}`;
    return new ConfigError('InterpolationDepthError', `${at(origin)}${problem}.`, {
      file: origin?.file,
      line: origin?.line,
      section: first.section,
      option: first.option,
    });
  }
}
