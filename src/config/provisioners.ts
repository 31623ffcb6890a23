/**
 * The provisioning of an image (`provision`, `provision-env`,
 * `provision-timeout`) and the boot test's own checks (`boot-test-command`,
 * `boot-test-playbook`): one item a line, each checked before anything is
 * created, each remembering where it was written (file:line) so that a
 * failure in the guest can name it.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { ConfigOrigin } from './configparser.js';
import { UsageError } from './usage-error.js';

/** Where one line of a multi-line value came from, and what it said. */
export interface LineSource {
  /** The line as written. */
  text: string;
  /** `file:line: [img] key` or `[img] key, line N`: how messages name it. */
  where: string;
}

export type Provisioner = LineSource &
  (
    | { kind: 'file'; source: string; dest: string }
    | { kind: 'script'; path: string; args: string[] }
    | { kind: 'shell'; command: string }
    | { kind: 'ansible'; playbook: string; options: string[] }
  );

export type ProvisionerKind = Provisioner['kind'];
export const PROVISIONER_KINDS: readonly ProvisionerKind[] = ['file', 'script', 'shell', 'ansible'];

/** A variable for `script` and `shell` provisioners; a secret one is masked in every output. */
export interface ProvisionVariable {
  name: string;
  value: string;
  secret: boolean;
}

export interface ProvisionSpec {
  provisioners: Provisioner[];
  env: ProvisionVariable[];
  /** The time limit of the way to SSH, and of each provisioner. */
  timeoutMs: number;
}

/** A command the boot test runs over SSH in the booted image. */
export type GuestCommand = LineSource;

/** The lines of a multi-line value that say something, each with where it came from. */
export function valueLines(value: string, origin: ConfigOrigin | undefined, label: string): LineSource[] {
  const lines = value.split('\n');
  const numbers = origin?.valueLines?.length === lines.length ? origin.valueLines : undefined;
  const sources: LineSource[] = [];
  lines.forEach((line, index) => {
    const text = line.trim();
    if (text === '') return;
    const where = origin
      ? `${origin.file}:${numbers ? numbers[index] : origin.line}: ${label}`
      : `${label}, line ${index + 1}`;
    sources.push({ text, where });
  });
  return sources;
}

/**
 * Words as a POSIX shell splits them: white space between words; '…' keeps
 * everything; "…" keeps everything but a backslash before " \ $ `; a
 * backslash outside quotes keeps the next character. Undefined when a quote
 * is not closed.
 */
export function splitWords(text: string): string[] | undefined {
  const words: string[] = [];
  let word: string | undefined;
  for (let at = 0; at < text.length; at += 1) {
    const char = text[at];
    if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (char === "'") {
      const close = text.indexOf("'", at + 1);
      if (close < 0) return undefined;
      word = (word ?? '') + text.slice(at + 1, close);
      at = close;
    } else if (char === '"') {
      const quoted = doubleQuoted(text, at + 1);
      if (quoted === undefined) return undefined;
      word = (word ?? '') + quoted.value;
      at = quoted.close;
    } else if (char === '\\' && at + 1 < text.length) {
      word = (word ?? '') + text[at + 1];
      at += 1;
    } else {
      word = (word ?? '') + char;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

function doubleQuoted(text: string, from: number): { value: string; close: number } | undefined {
  let value = '';
  for (let at = from; at < text.length; at += 1) {
    const char = text[at];
    if (char === '"') return { value, close: at };
    if (char === '\\' && at + 1 < text.length && '"\\$`'.includes(text[at + 1])) {
      value += text[at + 1];
      at += 1;
    } else {
      value += char;
    }
  }
  return undefined;
}

/** A path as answer files' are read: `~` expands, relative to the working folder. */
export function hostPath(path: string, home: string): string {
  if (path === '~') return home;
  return resolve(path.startsWith('~/') ? join(home, path.slice(2)) : path);
}

/** Whether the path is something the build can read: a file, or (`folder`) a folder too. */
function readable(path: string, folder: boolean): boolean {
  try {
    const info = statSync(path);
    if (!info.isFile() && !(folder && info.isDirectory())) return false;
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function refuse(line: LineSource, problem: string): UsageError {
  return new UsageError(`${line.where}: '${line.text}': ${problem}`);
}

/** A host file (or folder) that a line names, as a full path; refused when the build cannot read it. */
export function hostFile(line: LineSource, path: string, what: string, home: string, folder = false): string {
  const full = hostPath(path, home);
  if (!readable(full, folder))
    throw refuse(
      line,
      `the ${what} '${full}' does not exist or is not readable (relative paths start at ${process.cwd()}).`,
    );
  return full;
}

const ACCEPTED =
  'a provisioner is `file SRC DEST`, `script PATH [ARGS…]`, `shell COMMAND…` or `ansible PLAYBOOK [options…]`';

/** One provisioner line, checked: its kind, its words, and the host files it names. */
export function parseProvisioner(line: LineSource, home: string): Provisioner {
  const words = splitWords(line.text);
  if (words === undefined) throw refuse(line, 'a quote is not closed.');
  const [kind, ...rest] = words;
  const need = (count: number, usage: string): void => {
    if (rest.length < count) throw refuse(line, `${kind} needs ${usage}.`);
  };
  const file = (path: string, what: string, folder = false): string => hostFile(line, path, what, home, folder);
  switch (kind) {
    case 'file':
      need(2, 'a source on this host and an absolute destination in the image: `file SRC DEST`');
      if (rest.length > 2) throw refuse(line, 'file takes two words, SRC and DEST (quote a name with spaces).');
      if (!isAbsolute(rest[1]))
        throw refuse(line, `the destination '${rest[1]}' is not an absolute path in the image.`);
      return { ...line, kind, source: file(rest[0], 'source', true), dest: rest[1] };
    case 'script':
      need(1, 'the script to run: `script PATH [ARGS…]`');
      return { ...line, kind, path: file(rest[0], 'script'), args: rest.slice(1) };
    case 'shell': {
      const command = line.text.slice(line.text.indexOf('shell') + 'shell'.length).trim();
      if (command === '') throw refuse(line, 'shell needs a command line: `shell COMMAND…`.');
      return { ...line, kind, command };
    }
    case 'ansible':
      need(1, 'a playbook: `ansible PLAYBOOK [ansible-playbook options…]`');
      return { ...line, kind, playbook: file(rest[0], 'playbook'), options: rest.slice(1) };
    default:
      throw refuse(line, `'${kind}' is not a kind of provisioner; ${ACCEPTED}.`);
  }
}

const VARIABLE = /^(secret\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;

/** One `provision-env` line: `NAME=VALUE` or `secret NAME=VALUE`. */
export function parseVariable(line: LineSource): ProvisionVariable {
  const match = VARIABLE.exec(line.text);
  if (!match) {
    // The line may hold a secret: name only what it starts with.
    const start = line.text.split(/[=\s]/)[0];
    throw new UsageError(
      `${line.where}: the line starting '${start}' is not a variable; write NAME=VALUE or secret NAME=VALUE ` +
        '(a name of letters, digits and _, not starting with a digit).',
    );
  }
  return { name: match[2], value: match[3], secret: match[1] !== undefined };
}

/** Whether a program is on the PATH. */
export function onPath(program: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((folder) => {
    try {
      accessSync(join(folder, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Ansible runs the host's ansible-playbook: there, or installable by the
 * host setup (apt-get or dnf), or the build is refused now.
 */
export function checkAnsible(line: LineSource, path = process.env.PATH ?? ''): void {
  if (onPath('ansible-playbook', path) || onPath('apt-get', path) || onPath('dnf', path)) return;
  throw refuse(
    line,
    "ansible runs the host's ansible-playbook, which is not installed, and this host has neither apt-get nor dnf " +
      'to install it; install Ansible (ansible-core) or remove the line.',
  );
}
