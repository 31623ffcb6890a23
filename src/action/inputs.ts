import * as core from '@actions/core';
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Overrides } from '../config/image-spec.js';
import { DURATION_FORMS, SIZE_FORMS, parseBytes, parseDuration } from '../config/units.js';
import { UsageError } from '../config/usage-error.js';
import { Input } from './constants.js';

/** Reads one input's raw text; core.getInput on a runner, a fake in tests. */
export type InputReader = (name: Input) => string;

const readInput: InputReader = (name) => core.getInput(name);

// YAML 1.2 core schema booleans, as core.getBooleanInput accepts them.
const TRUE_WORDS = ['true', 'True', 'TRUE'];
const FALSE_WORDS = ['false', 'False', 'FALSE'];

function invalid(name: Input, value: string, accepted: string): UsageError {
  return new UsageError(`Input '${name}' is '${value}'; ${accepted}.`);
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
  throw invalid(name, value, `use true or false (YAML 1.2 core schema: ${[...TRUE_WORDS, ...FALSE_WORDS].join(', ')})`);
}

/** A boolean whose default action.yml gives: the runner always passes a value. */
export function requiredBoolean(name: Input, read: InputReader = readInput): boolean {
  const value = optionalBoolean(name, read);
  if (value === undefined) throw new UsageError(`Input '${name}' is empty; use true or false.`);
  return value;
}

export function optionalChoice<T extends string>(name: Input, choices: readonly T[], read: InputReader = readInput): T | undefined {
  const value = optionalString(name, read);
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) throw invalid(name, value, `use one of ${choices.join(', ')}`);
  return value as T;
}

/** A size such as 4G or '5 GiB', checked here so that the message names the input; passed on as written. */
export function optionalSize(name: Input, read: InputReader = readInput): string | undefined {
  const value = optionalString(name, read);
  if (value !== undefined && !parseBytes(value)) throw invalid(name, value, `use ${SIZE_FORMS}`);
  return value;
}

export function optionalDuration(name: Input, read: InputReader = readInput): string | undefined {
  const value = optionalString(name, read);
  if (value !== undefined && !parseDuration(value)) throw invalid(name, value, `use ${DURATION_FORMS}`);
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
    throw new UsageError(`Input '${name}': '${value}' is not a readable file (relative paths start at the workspace, ${process.cwd()}).`);
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
}

/** Read and check every input; throws UsageError naming the input at the first bad one. */
export function readInputs(read: InputReader = readInput): ActionInputs {
  const image = requiredString(Input.Image, read);
  const outputDir = requiredString(Input.OutputDir, read);
  const configText = read(Input.ConfigText);
  return {
    image,
    overrides: {
      cache_dir: optionalString(Input.CacheDir, read),
      format: optionalChoice(Input.Format, ['qcow2', 'raw'], read),
      'image-size': optionalSize(Input.ImageSize, read),
      mac: optionalString(Input.Mac, read),
      'installer-logs': optionalBoolean(Input.InstallerLogs, read),
      'log-file': optionalBoolean(Input.LogFile, read),
      'log-filename': optionalString(Input.LogFilename, read),
      accelerator: optionalChoice(Input.Accelerator, ['auto', 'kvm', 'tcg'], read),
      'install-timeout': optionalDuration(Input.InstallTimeout, read),
      'zero-free-space': optionalChoice(Input.ZeroFreeSpace, ['discard', 'zerofree', 'none'], read),
      compress: optionalChoice(Input.Compress, ['none', 'zlib', 'zstd'], read),
      'boot-test': optionalBoolean(Input.BootTest, read),
    },
    configFile: optionalReadableFile(Input.Config, read),
    configText: configText.trim() === '' ? undefined : configText,
    installDependencies: requiredBoolean(Input.InstallDependencies, read),
    upload: requiredBoolean(Input.Upload, read),
    outputDir: resolve(outputDir),
  };
}
