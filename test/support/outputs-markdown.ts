import type { ImageFormat } from '../../src/config/image-spec.js';
import { OUTPUTS } from '../../src/action/outputs.js';
import { ARTIFACTS } from '../../src/pipeline/artifacts.js';

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
