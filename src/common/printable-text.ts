/**
 * Text from outside the project (guest file names, os-release, installer
 * logs, a command's output, a previous manifest) made safe to print. The
 * Actions runner reads a step's output with .NET's ReadLine, which ends a
 * line at `\r` as well as `\n`, and takes a line that starts with `::` (after
 * blanks) for a workflow command, or one with `##[` anywhere in it (the old
 * form, still honoured); a terminal takes ESC for the start of a control
 * sequence. So every control character (C0 and C1, DEL), U+2028 and U+2029
 * are shown as escapes (`\r`, `\x1b`, `\u2028`), and `##[` as `#\x23[`. A tab
 * stays: it ends no line and drives no terminal. The result holds nothing
 * these escapes would change again: printing it twice changes nothing.
 */

// Every C0 control but the tab, DEL, every C1 control, the Unicode line and paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS_BUT_NEWLINE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/g;
const OLD_COMMAND_PREFIX = /##\[/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r' };

function escapeControl(char: string): string {
  const code = char.charCodeAt(0);
  if (NAMED[char] !== undefined) return NAMED[char];
  return code > 0xff ? `\\u${code.toString(16)}` : `\\x${code.toString(16).padStart(2, '0')}`;
}

/** One line: every control character shown as an escape, a newline too (`\n`). */
export function printableLine(text: string): string {
  return text.replace(CONTROLS, escapeControl).replace(OLD_COMMAND_PREFIX, '#\\x23[');
}

/**
 * A message of one or more lines: its newlines kept (each line is printed
 * with its own prefix), every other control character shown as an escape.
 */
export function printableLines(text: string): string {
  return text.replace(CONTROLS_BUT_NEWLINE, escapeControl).replace(OLD_COMMAND_PREFIX, '#\\x23[');
}
