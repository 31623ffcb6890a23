import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ImageFormat } from '../../src/config/image-spec.js';
import { OUTPUTS } from '../../src/action/outputs.js';
import { ARTIFACTS, type ArtifactRole } from '../../src/pipeline/artifacts.js';

export const FILES_START = '<!-- files:start -->';
export const FILES_END = '<!-- files:end -->';
export const OUTPUTS_START = '<!-- outputs:start -->';
export const OUTPUTS_END = '<!-- outputs:end -->';

/** Text for a Markdown table cell: one line, `|` escaped, `<` and `>` outside code spans as text. */
function cell(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .trim()
    .replaceAll('|', '\\|')
    .split('`')
    .map((part, i) => (i % 2 === 1 ? part : part.replaceAll('<', '&lt;').replaceAll('>', '&gt;')))
    .join('`');
}

/** The docs' table of the action's outputs: each with the file it names (from the artifact table) and what it is. */
export function outputsMarkdown(descriptions: Readonly<Record<string, string>>): string {
  const rows = OUTPUTS.map((output) => {
    const file = output.role ? `\`${ARTIFACTS[output.role].name('<image>', '<format>' as ImageFormat)}\`` : '';
    return `| \`${output.name}\` | ${file} | ${cell(descriptions[output.name] ?? '')} |`;
  });
  return ['| output | file | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/** The docs' table of the files a build makes, as the artifact table declares them. */
export function filesMarkdown(): string {
  const place = (order: number | undefined): string => (order === undefined ? 'no' : String(order));
  const rows = (Object.keys(ARTIFACTS) as ArtifactRole[]).map((role) => {
    const kind = ARTIFACTS[role];
    const name = kind.name('<image>', '<format>' as ImageFormat);
    return (
      `| \`${name}\` | ${role} | ${cell(kind.made ?? (kind.perFormat ? 'one a format' : 'always'))} | ` +
      `${place(kind.publish)} | ${place(kind.sums)} | ${place(kind.upload)} | ` +
      `${kind.output ? `\`${kind.output}\`` : ''} |`
    );
  });
  return [
    '| file | role | made | published | in SHA256SUMS | uploaded | output |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

/**
 * Assert that the block between `start` and `end` in the file is `body`;
 * with UPDATE_DOCS=1, write it there instead. Returns the block as it was.
 */
export function assertGenerated(path: string, start: string, end: string, body: string): string {
  const text = readFileSync(path, 'utf8');
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  assert.ok(from >= 0 && to > from, `${path} needs ${start} … ${end}`);
  const expected = `${start}\n${body}\n${end}`;
  const actual = text.slice(from, to + end.length);
  if (process.env.UPDATE_DOCS === '1' && actual !== expected) {
    writeFileSync(path, text.slice(0, from) + expected + text.slice(to + end.length));
    return expected;
  }
  assert.equal(actual, expected, `${path} is out of date: run UPDATE_DOCS=1 npm run test:fast`);
  return actual;
}
