import { OPTIONS, type OptionSpec } from '../../src/config/options.js';

export const README_START = '<!-- options:start -->';
export const README_END = '<!-- options:end -->';

/** How the command spells an option: `-f`/`--format`, `--[no-]log-file`, `--no-upload`. */
export function flagMarkdown(entry: OptionSpec): string {
  const cli = entry.cli;
  if (cli === undefined) return '';
  if (cli.onlyNo) return `\`--no-${cli.long}\``;
  const long = cli.noHelp !== undefined ? `--[no-]${cli.long}` : `--${cli.long}`;
  return cli.short ? `\`-${cli.short}\`/\`${long}\`` : `\`${long}\``;
}

/** `<` and `>` outside code spans, as text rather than HTML. */
function escapeHtml(text: string): string {
  return text
    .split('`')
    .map((part, i) => (i % 2 === 1 ? part : part.replaceAll('<', '&lt;').replaceAll('>', '&gt;')))
    .join('`');
}

function meaning(entry: OptionSpec): string {
  const notes: string[] = [];
  if (entry.choices) notes.push(entry.choices.map((choice) => `\`${choice}\``).join(', '));
  const fallback = entry.defaultDoc ?? (entry.default === '' ? undefined : entry.default);
  if (fallback !== undefined) notes.push(`default: ${entry.defaultDoc ?? `\`${fallback}\``}`);
  if (entry.inputDefault !== undefined) notes.push(`input default: \`${entry.inputDefault}\``);
  if (entry.required) notes.push('required');
  return `${entry.new ? '*new*: ' : ''}${escapeHtml(entry.help)}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

/** The table of every option in docs/options.md, as the block between the markers holds it. */
export function optionsMarkdown(): string {
  const rows = (OPTIONS as readonly OptionSpec[]).map(
    (entry) =>
      `| ${entry.key ? `\`${entry.key}\`` : ''} | ${flagMarkdown(entry)} | ${entry.input ? `\`${entry.input}\`` : ''} | ${meaning(entry)} |`,
  );
  return ['| key | option | input | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
