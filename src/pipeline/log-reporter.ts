import { closeSync, writeSync } from 'node:fs';
import { formatDuration } from '../common/units.js';
import { formatCommand } from '../host/command-error.js';
import { redactSecrets } from '../common/credentials.js';
import { createOutputFile } from './output-file.js';
import { printableLine, printableLines } from '../common/printable-text.js';
import { STEP_TITLES, type Reporter, type Step } from '../common/reporter.js';

type Level = 'INFO' | 'WARNING' | 'ERROR';

/** Python logging's asctime: `2026-11-26 12:34:56,789`, local time. */
export function asctime(date = new Date()): string {
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())},${pad(date.getMilliseconds(), 3)}`
  );
}

/**
 * Log lines in the original's format, `<time> <name> [<pid>] <LEVEL>: <message>`,
 * to stderr and, when enabled, to a log file. Every line of a message gets
 * the prefix, and control characters are shown as escapes (printable-text.ts):
 * in a workflow's `run:` step no line can start with `::`, and no guest file
 * name or os-release field can move the terminal's cursor.
 */
export class LogReporter implements Reporter {
  private fd?: number;
  private secrets: readonly string[] = [];
  /** Lines said before the log file exists (it is created after the checks), written to it first. */
  private held?: string[];

  constructor(
    private readonly name = 'image-factory',
    private readonly write: (text: string) => void = (text) => process.stderr.write(text),
  ) {}

  /** Keep every line from now on for a log file that openLogFile will create. */
  holdLines(): void {
    this.held ??= [];
  }

  /**
   * Create the log file (never through a symlink, never over an existing
   * file: see createOutputFile) with the lines held so far; returns its name.
   */
  openLogFile(path: string): string {
    const created = createOutputFile(path);
    this.fd = created.fd;
    for (const line of this.held ?? []) writeSync(created.fd, line);
    this.held = undefined;
    if (created.path !== path) this.info(`${path} exists already (or is a symlink): logging to ${created.path}`);
    return created.path;
  }

  /** Mask these strings (passwords from the configuration's URIs) in every line from now on. */
  mask(secrets: readonly string[]): void {
    this.secrets = [...secrets];
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.held = undefined;
  }

  log(level: Level, message: string): void {
    // Passwords first: a printable form of one would no longer match it.
    const text = printableLines(redactSecrets(message, this.secrets));
    const prefix = `${asctime()} ${this.name} [${process.pid}] ${level}: `;
    const lines = text
      .split('\n')
      .map((line) => `${prefix}${line}\n`)
      .join('');
    this.write(lines);
    if (this.fd !== undefined) writeSync(this.fd, lines);
    else this.held?.push(lines);
  }

  info(message: string): void {
    this.log('INFO', message);
  }
  notice(message: string): void {
    this.log('INFO', message);
  }
  warning(message: string): void {
    this.log('WARNING', message);
  }
  error(message: string): void {
    this.log('ERROR', message);
  }
  command(argv: readonly string[]): void {
    // One line, whatever the arguments hold.
    this.log('INFO', `Calling ${printableLine(redactSecrets(formatCommand(argv), this.secrets))}`);
  }
  output(line: string): void {
    this.log('INFO', `  ${printableLine(redactSecrets(line, this.secrets))}`);
  }
  stepStarted(step: Step): void {
    this.log('INFO', `== ${step}: ${STEP_TITLES[step]}`);
  }
  stepFinished(step: Step, durationMs: number, ok: boolean): void {
    this.log(ok ? 'INFO' : 'ERROR', `== ${step} ${ok ? 'done' : 'FAILED'} after ${formatDuration(durationMs)}`);
  }
  progress(step: Step, message: string): void {
    this.log('INFO', `${step}: ${message}`);
  }
}
