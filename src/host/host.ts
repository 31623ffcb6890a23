import type { Reporter } from '../pipeline/reporter.js';
import { CommandError, formatCommand } from './command-error.js';
import { sudoersLine } from './privileges.js';
import { runCommand, type RunOptions, type RunResult } from './exec.js';

export interface HostRunOptions extends RunOptions {
  /** The command needs root: prefixed with `sudo -n` when this process is not root. */
  root?: boolean;
  /** Do not log the command line (for probes whose output is parsed). */
  quiet?: boolean;
  /** Run it even in a dry run (read-only probes). */
  readOnly?: boolean;
}

/**
 * The one place that starts external programs. In a dry run it prints the
 * command lines instead of running them.
 */
export class Host {
  readonly isRoot: boolean;

  constructor(
    readonly reporter: Reporter,
    readonly dryRun = false,
    readonly signal?: AbortSignal,
    uid = process.getuid?.() ?? 0,
  ) {
    this.isRoot = uid === 0;
  }

  /** The same host, but deaf to the interruption: cleanup must run to the end after Ctrl-C. */
  uninterruptible(): Host {
    return new Host(this.reporter, this.dryRun, undefined, this.isRoot ? 0 : 1);
  }

  async run(argv: readonly string[], options: HostRunOptions = {}): Promise<RunResult> {
    const command = options.root && !this.isRoot ? ['sudo', '-n', ...argv] : [...argv];
    if (!options.quiet) this.reporter.command(command);
    if (this.dryRun && !options.readOnly) return { exitCode: 0, signal: null, stdout: '', lastLines: [] };
    try {
      return await runCommand(command, { signal: this.signal, ...options });
    } catch (error) {
      if (error instanceof CommandError && command[0] === 'sudo' && error.lastLines.some((l) => /password is required|not allowed|may not run/.test(l))) {
        throw new CommandError(command, error.exitCode, error.signal, [
          ...error.lastLines,
          `'${formatCommand(argv)}' needs root, and sudo does not allow it without a password.`,
          `Allow the build's root commands in sudoers (visudo -f /etc/sudoers.d/image-factory): ${sudoersLine()}`,
        ]);
      }
      throw error;
    }
  }
}
