import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from '../support/fixture.js';

/**
 * The rooms of src/, lowest first: a room imports only from rooms of earlier
 * rows, never from its own row's other rooms nor from a later row.
 * docs/architecture.md says what each room holds.
 */
export const ROOMS: readonly (readonly string[])[] = [
  ['common'],
  ['config'],
  ['host'],
  ['net'],
  ['context'],
  ['guest', 'vm'],
  ['supply-chain'],
  ['pipeline'],
  ['action', 'cli'],
];

/** A relative import between two rooms: `from` imports `to`, the first time seen in `where`. */
export interface RoomImport {
  from: string;
  to: string;
  where: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** src/'s TypeScript files by path relative to src/ ('pipeline/build.ts'), with their text. */
export function readSources(root = join(REPO_ROOT, 'src')): Map<string, string> {
  return new Map(
    sourceFiles(root).map((file) => [relative(root, file).split(sep).join('/'), readFileSync(file, 'utf8')]),
  );
}

const roomOf = (path: string): string => path.split('/')[0];

/** The imports that cross rooms (static, dynamic, type-only and re-exports alike), one per pair of rooms. */
export function roomImports(sources: Map<string, string>): RoomImport[] {
  const found = new Map<string, RoomImport>();
  for (const [path, text] of sources) {
    for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = posix.normalize(posix.join(posix.dirname(path), fileName));
      const from = roomOf(path);
      const to = roomOf(target);
      const key = `${from} -> ${to}`;
      if (from !== to && !found.has(key)) found.set(key, { from, to, where: `src/${path} imports ${fileName}` });
    }
  }
  return [...found.values()];
}

/** Imports against the rooms' order, and rooms the order does not name. */
export function againstDirection(imports: RoomImport[], rooms = ROOMS): string[] {
  const row = new Map(rooms.flatMap((names, index) => names.map((name) => [name, index] as const)));
  const problems: string[] = [];
  for (const { from, to, where } of imports) {
    const [a, b] = [row.get(from), row.get(to)];
    if (a === undefined || b === undefined) {
      problems.push(`${where}: ${a === undefined ? from : to}/ is not in the rooms' order`);
    } else if (b >= a) {
      problems.push(`${where}: ${from}/ may not import ${to}/ (${to}/ is ${b === a ? 'beside' : 'above'} it)`);
    }
  }
  return problems;
}

/** Cycles between rooms: each strongly connected set of two or more rooms, as 'a -> b -> a'. */
export function roomCycles(imports: RoomImport[]): string[] {
  const next = new Map<string, string[]>();
  for (const { from, to } of imports) next.set(from, [...(next.get(from) ?? []), to]);
  const reaches = (start: string): Set<string> => {
    const seen = new Set<string>();
    const queue = [start];
    for (let room = queue.pop(); room !== undefined; room = queue.pop()) {
      for (const to of next.get(room) ?? []) {
        if (!seen.has(to)) {
          seen.add(to);
          queue.push(to);
        }
      }
    }
    return seen;
  };
  const cycles = new Set<string>();
  for (const room of next.keys()) {
    const members = [...reaches(room)].filter((other) => other !== room && reaches(other).has(room));
    if (members.length) cycles.add([room, ...members].sort().join(' <-> '));
  }
  return [...cycles];
}

/** The rooms' rows as the first code block under docs/architecture.md's '## Rooms' lists them: `guest/  vm/  …`. */
function documentedOrder(doc: string): string[][] {
  const section = doc.slice(doc.indexOf('## Rooms'));
  const block = section.slice(section.indexOf('```') + 3, section.indexOf('```', section.indexOf('```') + 3));
  return block
    .split('\n')
    .map((line) => [...line.matchAll(/(?:^|\s)([a-z-]+)\//g)].map((match) => match[1]))
    .filter((row) => row.length > 0);
}

describe('rooms of src/', () => {
  const imports = roomImports(readSources());

  test('import one way only, in the declared order', () => {
    assert.deepEqual(againstDirection(imports), []);
  });

  test('have no cycle between them', () => {
    assert.deepEqual(roomCycles(imports), []);
  });

  test('are each one of the declared rooms, in docs/architecture.md in the same order', () => {
    const rooms = readdirSync(join(REPO_ROOT, 'src')).filter((name) =>
      statSync(join(REPO_ROOT, 'src', name)).isDirectory(),
    );
    assert.deepEqual([...rooms].sort(), ROOMS.flat().sort());
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'architecture.md'), 'utf8');
    assert.deepEqual(
      documentedOrder(doc),
      ROOMS,
      "the first code block under '## Rooms' lists the rooms, a row a line",
    );
    assert.deepEqual(
      rooms.filter((room) => !doc.includes(`\`src/${room}/\``)),
      [],
      'docs/architecture.md names each room as `src/<room>/`',
    );
  });

  test('an import against the order, and a cycle, are found', () => {
    const sources = new Map([
      ['common/units.ts', "import type { ImageSpec } from '../config/image-spec.js';"],
      ['config/image-spec.ts', "export { formatBytes } from '../common/units.js';"],
      ['guest/layout.ts', "const screen = await import('../vm/screen.js');"],
      ['vm/screen.ts', "import '../guest/layout.js';"],
      ['pipeline/fetch/http.ts', "import { Host } from '../../host/host.js';"],
      ['extra/thing.ts', "import { formatBytes } from '../common/units.js';"],
    ]);
    const imports = roomImports(sources);
    assert.deepEqual(againstDirection(imports), [
      'src/common/units.ts imports ../config/image-spec.js: common/ may not import config/ (config/ is above it)',
      'src/guest/layout.ts imports ../vm/screen.js: guest/ may not import vm/ (vm/ is beside it)',
      'src/vm/screen.ts imports ../guest/layout.js: vm/ may not import guest/ (guest/ is beside it)',
      "src/extra/thing.ts imports ../common/units.js: extra/ is not in the rooms' order",
    ]);
    assert.deepEqual(roomCycles(imports), ['common <-> config', 'guest <-> vm']);
    assert.ok(
      imports.some((edge) => edge.from === 'pipeline' && edge.to === 'host'),
      'a nested folder is its room',
    );
  });
});
