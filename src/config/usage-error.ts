/**
 * Bad input: a configuration, option or environment problem found before
 * anything was created. Front doors turn it into exit code 2. A
 * configuration file's own errors (ConfigError) are UsageErrors too.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
