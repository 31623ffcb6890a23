/**
 * The JSON that test/support/configparser-reference.py prints, produced by
 * our ConfigParser instead of Python's, plus a runner for the Python script,
 * so that a test can compare the two.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ConfigParser } from '../../src/config/configparser.js';

export type SetTriple = [section: string, key: string, value: string];

export interface ReferenceCase {
  /** The texts of the files, read in order. */
  files: string[];
  /** Applied with set() after reading, like --set. */
  sets?: SetTriple[];
}

export type SectionResult = Record<string, string> | { error: string };

export type ReferenceResult = { ok: true; sections: Record<string, SectionResult> } | { ok: false; error: string };

export const REFERENCE_SCRIPT = join(process.cwd(), 'test', 'support', 'configparser-reference.py');

/** Our answer for files given as texts. */
export function ourResultForTexts(testCase: ReferenceCase): ReferenceResult {
  return ourResult((parser) => {
    testCase.files.forEach((text, index) => parser.read(text, `case-file-${index}.ini`));
  }, testCase.sets ?? []);
}

/** Our answer for files on disk, read as the Python script reads them. */
export function ourResultForFiles(paths: string[], sets: SetTriple[] = []): ReferenceResult {
  return ourResult((parser) => {
    for (const path of paths) {
      let text: string;
      try {
        // fatal: Python's utf-8 decoding rejects malformed bytes.
        text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new ReadFailure(
          code === 'ENOENT' ? 'FileNotFoundError' : code === undefined ? 'UnicodeDecodeError' : 'OSError',
        );
      }
      parser.read(text, path);
    }
  }, sets);
}

/** Python's answer for files on disk. */
export function pythonResultForFiles(paths: string[], sets: SetTriple[] = []): ReferenceResult {
  const args = [REFERENCE_SCRIPT, ...sets.flatMap((triple) => ['--set', ...triple]), '--', ...paths];
  return JSON.parse(execFileSync('python3', args, { encoding: 'utf8' })) as ReferenceResult;
}

/** Python's answers for many cases in one run of the interpreter. */
export function pythonResultsForTexts(cases: ReferenceCase[]): ReferenceResult[] {
  const folder = mkdtempSync(join(tmpdir(), 'configparser-cases-'));
  try {
    const casesFile = join(folder, 'cases.json');
    writeFileSync(casesFile, JSON.stringify(cases));
    const output = execFileSync('python3', [REFERENCE_SCRIPT, '--batch', casesFile], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    return JSON.parse(output) as ReferenceResult[];
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/**
 * A result with every object turned into its entries, so that
 * deepStrictEqual also compares key order.
 */
export function comparable(result: ReferenceResult): unknown {
  if (!result.ok) return result;
  return {
    ok: true,
    sections: Object.entries(result.sections).map(([name, items]) => [name, Object.entries(items)]),
  };
}

class ReadFailure extends Error {
  constructor(readonly pythonError: string) {
    super(pythonError);
  }
}

function ourResult(readAll: (parser: ConfigParser) => void, sets: SetTriple[]): ReferenceResult {
  const parser = new ConfigParser();
  try {
    readAll(parser);
    for (const [section, key, value] of sets) parser.set(section, key, value);
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, error: error.kind };
    if (error instanceof ReadFailure) return { ok: false, error: error.pythonError };
    throw error;
  }
  const sections: Array<[string, SectionResult]> = parser.sections().map((name) => {
    try {
      return [name, parser.items(name)];
    } catch (error) {
      if (error instanceof ConfigError) return [name, { error: error.kind }];
      throw error;
    }
  });
  return { ok: true, sections: Object.fromEntries(sections) };
}
