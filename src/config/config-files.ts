import { closeSync, existsSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigParser } from './configparser.js';
import { UsageError } from './usage-error.js';

export const CONFIG_ENV = 'IMAGE_FACTORY_CONFIG';
export const SYSTEM_CONFIG = '/etc/image-factory.conf';

/**
 * The folder of shipped image definitions. The code runs from build/, from a
 * dist/ bundle or from an installed package, so look upwards for data/.
 */
export function shippedDataDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'data', 'image-factory.conf'))) return join(dir, 'data');
    const parent = dirname(dir);
    if (parent === dir) throw new Error('the shipped data/image-factory.conf was not found next to the program');
    dir = parent;
  }
}

export interface ConfigSearch {
  env?: NodeJS.ProcessEnv;
  home?: string;
  /** Extra files read last (the action's `config`). */
  extraFiles?: string[];
  /** Texts read after them, each named in messages by its source (the action's `config-text`). */
  extraTexts?: Array<{ text: string; source: string }>;
}

/**
 * The files read, in order (a later one wins): the shipped definitions,
 * /etc/image-factory.conf, ~/.config/image-factory.conf — or, as in the
 * original, only the file that IMAGE_FACTORY_CONFIG names.
 */
export function configFiles(search: ConfigSearch = {}): string[] {
  const env = search.env ?? process.env;
  const named = env[CONFIG_ENV];
  if (named !== undefined) {
    const problem = unreadable(named);
    if (problem !== undefined)
      throw new UsageError(`'${named}' (set in ${CONFIG_ENV}) is not a readable file: it ${problem}.`);
    return [resolve(named), ...(search.extraFiles ?? [])];
  }
  const home = search.home ?? homedir();
  const files = [
    join(shippedDataDir(), 'image-factory.conf'),
    SYSTEM_CONFIG,
    join(home, '.config', 'image-factory.conf'),
  ];
  // A file that is not there is skipped; one that is there but cannot be read is an error, never ignored.
  const present = files.filter((file) => existsSync(file));
  for (const file of present) {
    const problem = unreadable(file);
    if (problem !== undefined) throw new UsageError(`the configuration file ${file} ${problem}.`);
  }
  return [...present, ...(search.extraFiles ?? [])];
}

/** Read the configuration files into one parser; `data_dir` defaults to the shipped folder. */
export function loadConfig(search: ConfigSearch = {}): { config: ConfigParser; files: string[] } {
  const files = configFiles(search);
  const config = new ConfigParser();
  config.set('DEFAULT', 'data_dir', shippedDataDir());
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read configuration file ${file}: ${(error as Error).message}`);
    }
    config.read(text, file);
  }
  for (const { text, source } of search.extraTexts ?? []) config.read(text, source);
  return { config, files };
}

/** Why the configuration file cannot be read, worded after its name, or undefined when it can. */
function unreadable(path: string): string | undefined {
  try {
    if (statSync(path).isDirectory()) return 'is a folder, not a file';
    const fd = openSync(path, 'r');
    try {
      if (!fstatSync(fd).isFile()) return 'is not a regular file';
    } finally {
      closeSync(fd);
    }
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'does not exist';
    if (code === 'EACCES') return 'cannot be read: permission denied';
    return `cannot be read: ${(error as Error).message}`;
  }
}
