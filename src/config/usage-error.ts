import { ConfigError } from './configparser.js';

/**
 * Bad input: a configuration, option or environment problem found before
 * anything was created. Front doors turn it into exit code 2.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A ConfigError as the UsageError the front doors report, keeping its place:
 * the message starts with file:line when the error knows them.
 */
export function asUsageError(error: unknown): unknown {
  if (!(error instanceof ConfigError)) return error;
  const at = error.file !== undefined && error.line !== undefined ? `${error.file}:${error.line}: ` : '';
  return new UsageError(at && !error.message.includes(at) ? `${at}${error.message}` : error.message);
}
