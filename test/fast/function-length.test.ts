import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from '../support/fixture.js';

/** About a screen: a function longer than this says why in a comment that starts `Long:`. */
const MAX_LINES = 60;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

export interface FunctionLength {
  where: string;
  name: string;
  lines: number;
  excused: boolean;
}

/** Every function, method and arrow function in src/, with its length in lines. */
export function functionLengths(root = join(REPO_ROOT, 'src')): FunctionLength[] {
  const found: FunctionLength[] = [];
  for (const file of sourceFiles(root)) {
    const text = readFileSync(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    // A function inside an excused one is part of the reason given.
    const visit = (node: ts.Node, insideExcused = false): void => {
      let excusedHere = insideExcused;
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
        const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
        const comments = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
        const holder = ts.isVariableDeclaration(node.parent) ? node.parent.parent.parent : node;
        const holderComments = ts.getLeadingCommentRanges(text, holder.getFullStart()) ?? [];
        const excused =
          insideExcused ||
          [...comments, ...holderComments].some((range) => /\bLong:/.test(text.slice(range.pos, range.end)));
        excusedHere = excused;
        const name =
          node.name?.getText(source) ??
          (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText(source) : '(anonymous)');
        found.push({ where: `${relative(REPO_ROOT, file)}:${start + 1}`, name, lines: end - start + 1, excused });
      }
      ts.forEachChild(node, (child) => visit(child, excusedHere));
    };
    visit(source);
  }
  return found.sort((a, b) => b.lines - a.lines);
}

describe('functions in src/', () => {
  test(`none is longer than ${MAX_LINES} lines without a comment saying why (Long: …)`, () => {
    const long = functionLengths().filter((fn) => fn.lines > MAX_LINES && !fn.excused);
    assert.deepEqual(
      long.map((fn) => `${fn.where} ${fn.name}: ${fn.lines} lines`),
      [],
    );
  });
});
