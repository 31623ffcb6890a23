import * as core from '@actions/core';
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  badValueMessage,
  optionByInput,
  OPTIONS,
  valueProblem,
  type OptionSpec,
  type Overrides,
} from '../config/options.js';
import { dollarProblem } from '../config/configparser.js';
import { UsageError } from '../config/usage-error.js';
import { Input } from './constants.js';

/** Reads one input's raw text; core.getInput on a runner, a fake in tests. */
export type InputReader = (name: Input) => string;

const readInput: InputReader = (name) => core.getInput(name);

// YAML 1.2 core schema booleans, as core.getBooleanInput accepts them.
const TRUE_WORDS = ['true', 'True', 'TRUE'];
const FALSE_WORDS = ['false', 'False', 'FALSE'];

function invalid(name: Input, problem: string): UsageError {
  const entry = inputOption(name);
  return new UsageError(badValueMessage(entry, { input: true }, problem));
}

/** The table's entry of an input (test/fast/options.test.ts checks that every Input has one). */
function inputOption(name: Input): OptionSpec {
  const entry = optionByInput(name);
  if (entry === undefined) throw new Error(`no option in the table has the input '${name}'`);
  return entry;
}

/** The input's text, or undefined when it is empty (the configuration decides). */
export function optionalString(name: Input, read: InputReader = readInput): string | undefined {
  const value = read(name).trim();
  return value === '' ? undefined : value;
}

export function requiredString(name: Input, read: InputReader = readInput): string {
  const value = optionalString(name, read);
  if (value === undefined) throw new UsageError(`Input '${name}' is required and was not given.`);
  return value;
}

export function optionalBoolean(name: Input, read: InputReader = readInput): boolean | undefined {
  const value = optionalString(name, read);
  if (value === undefined) return undefined;
  if (TRUE_WORDS.includes(value)) return true;
  if (FALSE_WORDS.includes(value)) return false;
  throw invalid(
    name,
    `'${value}' is not a boolean; use true or false (YAML 1.2 core schema: ${[...TRUE_WORDS, ...FALSE_WORDS].join(', ')}).`,
  );
}

/** A boolean whose default action.yml gives: the runner always passes a value. */
export function requiredBoolean(name: Input, read: InputReader = readInput): boolean {
  const value = optionalBoolean(name, read);
  if (value === undefined) throw new UsageError(`Input '${name}' is empty; use true or false.`);
  return value;
}

/** A value checked as the table says for the input's kind (choice, size, duration, MAC, …); passed on as written. */
export function optionalChecked(name: Input, read: InputReader = readInput): string | undefined {
  const value = optionalString(name, read);
  if (value === undefined) return undefined;
  const dollar = dollarProblem(value);
  const problem = dollar === undefined ? valueProblem(inputOption(name), value) : `'${value}' has ${dollar}`;
  if (problem !== undefined) throw invalid(name, problem);
  return value;
}

/** A file that must exist and be readable; relative paths are taken from the workspace (the step's working folder). */
export function optionalReadableFile(name: Input, read: InputReader = readInput): string | undefined {
  const value = optionalString(name, read);
  if (value === undefined) return undefined;
  const path = resolve(value);
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
    accessSync(path, constants.R_OK);
  } catch {
    throw new UsageError(
      `Input '${name}': '${value}' is not a readable file (relative paths start at the workspace, ${process.cwd()}).`,
    );
  }
  return path;
}

/** Everything the inputs ask for, checked. */
export interface ActionInputs {
  image: string;
  /** The same overrides the command line's options make. */
  overrides: Overrides;
  configFile?: string;
  configText?: string;
  installDependencies: boolean;
  upload: boolean;
  outputDir: string;
  /** The secret key's text and its passphrase (secrets: masked, never in the configuration). */
  signingKey?: string;
  signingPassphrase?: string;
}

/** One input read and checked as its kind says. */
function readOne(entry: OptionSpec, read: InputReader): string | boolean | undefined {
  const name = entry.input as Input;
  if (entry.kind === 'boolean')
    return entry.inputDefault === undefined ? optionalBoolean(name, read) : requiredBoolean(name, read);
  if (entry.kind === 'file') return optionalReadableFile(name, read);
  if (entry.kind === 'text') return read(name).trim() === '' ? undefined : read(name);
  if (entry.required || entry.inputDefault !== undefined) return requiredString(name, read);
  return optionalChecked(name, read);
}

/** Read and check every input of the table, in its order; throws UsageError naming the input at the first bad one. */
export function readInputs(read: InputReader = readInput): ActionInputs {
  const overrides: Record<string, string | boolean | undefined> = {};
  const own: Partial<Record<Input, string | boolean | undefined>> = {};
  for (const entry of OPTIONS as readonly OptionSpec[]) {
    if (entry.input === undefined) continue;
    const value = readOne(entry, read);
    if (entry.key !== undefined) overrides[entry.key] = value;
    else own[entry.input as Input] = value;
  }
  return {
    image: own[Input.Image] as string,
    overrides: overrides as Overrides,
    configFile: own[Input.Config] as string | undefined,
    configText: own[Input.ConfigText] as string | undefined,
    installDependencies: own[Input.InstallDependencies] as boolean,
    upload: own[Input.Upload] as boolean,
    outputDir: resolve(own[Input.OutputDir] as string),
    signingKey: own[Input.SigningKey] as string | undefined,
    signingPassphrase: own[Input.SigningPassphrase] as string | undefined,
  };
}
