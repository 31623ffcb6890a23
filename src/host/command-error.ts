/** A command that ran and failed: carries what a user needs to see why. */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly lastLines: readonly string[],
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    const tail = lastLines.length ? `; its last lines:\n${lastLines.map((l) => `  | ${l}`).join('\n')}` : '';
    super(`'${formatCommand(argv)}' ${how}${tail}`);
    this.name = 'CommandError';
  }
}

/** Quote a command line the way a POSIX shell would accept it back. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map(quoteArgument).join(' ');
}

export function quoteArgument(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
