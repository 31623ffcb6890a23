import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, ConfigParser } from './configparser.js';
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
  /** Extra files read last (the action's `config` and `config-text`). */
  extraFiles?: string[];
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
    if (!isReadableFile(named)) {
      throw new UsageError(`'${named}' (set in ${CONFIG_ENV}) is not a readable file.`);
    }
    return [resolve(named), ...(search.extraFiles ?? [])];
  }
  const home = search.home ?? homedir();
  const files = [
    join(shippedDataDir(), 'image-factory.conf'),
    SYSTEM_CONFIG,
    join(home, '.config', 'image-factory.conf'),
  ];
  return [...files.filter(isReadableFile), ...(search.extraFiles ?? [])];
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
    try {
      config.read(text, file);
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw error;
    }
  }
  return { config, files };
}

function isReadableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    readFileSync(path, { flag: 'r' }).subarray(0, 0);
    return true;
  } catch {
    return false;
  }
}
