import * as core from '@actions/core';
import { formatDuration } from '../common/units.js';
import { formatCommand } from '../host/command-error.js';
import { redactSecrets } from '../common/credentials.js';
import { printableLine, printableLines } from '../common/printable-text.js';
import { STEP_TITLES, type Reporter, type Step } from '../common/reporter.js';

export interface StepRecord {
  step: Step;
  durationMs: number;
  ok: boolean;
}

/** `12:34:56`: the runner's own timestamps are hidden unless a reader turns them on. */
function clock(date = new Date()): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/**
 * The pipeline as a workflow log: each step folds into a group, lines carry
 * the time, warnings and errors become annotations. Every printed line starts
 * with the time, and control characters (the runner ends a line at `\r` too)
 * and `##[` are shown as escapes (printable-text.ts), so a line that an
 * installer, a command or a guest file name brings can never be taken by the
 * runner for a workflow command. Optionally mirrors everything into a log
 * file (the `log-file` input), which makes its own text printable.
 */
export class ActionReporter implements Reporter {
  /** Steps that finished, in order, for the job summary. */
  readonly steps: StepRecord[] = [];
  private groupOpen = false;
  private secrets: readonly string[] = [];

  constructor(private mirror?: Reporter) {}

  /** Mirror every message into `mirror` too from now on (the log file, once the inputs name it). */
  mirrorInto(mirror: Reporter): void {
    this.mirror = mirror;
  }

  /**
   * Mask these strings before the text is made printable: the runner masks
   * the passwords it was given, but no longer finds one whose control
   * characters were turned into escapes.
   */
  mask(secrets: readonly string[]): void {
    this.secrets = [...secrets];
  }

  private printable(message: string): string {
    return printableLines(redactSecrets(message, this.secrets));
  }

  private print(text: string): void {
    const stamp = clock();
    for (const line of text.split('\n')) core.info(`[${stamp}] ${line}`);
  }

  info(message: string): void {
    this.print(this.printable(message));
    this.mirror?.info(message);
  }

  notice(message: string): void {
    core.notice(this.printable(message));
    this.mirror?.notice(message);
  }

  warning(message: string): void {
    core.warning(this.printable(message));
    this.mirror?.warning(message);
  }

  error(message: string): void {
    core.error(this.printable(message));
    this.mirror?.error(message);
  }

  command(argv: readonly string[]): void {
    // One line, whatever the arguments hold.
    this.print(`$ ${printableLine(redactSecrets(formatCommand(argv), this.secrets))}`);
    this.mirror?.command(argv);
  }

  output(line: string): void {
    this.print(`  ${printableLine(redactSecrets(line, this.secrets))}`);
    this.mirror?.output(line);
  }

  stepStarted(step: Step): void {
    this.openGroup(`${STEP_TITLES[step]} (${step})`);
    this.mirror?.stepStarted(step);
  }

  stepFinished(step: Step, durationMs: number, ok: boolean): void {
    this.print(`${step} ${ok ? 'done' : 'FAILED'} after ${formatDuration(durationMs)}`);
    this.closeGroup();
    this.steps.push({ step, durationMs, ok });
    this.mirror?.stepFinished(step, durationMs, ok);
  }

  progress(step: Step, message: string): void {
    this.print(this.printable(`${step}: ${message}`));
    this.mirror?.progress(step, message);
  }

  section(title: string): void {
    this.openGroup(redactSecrets(title, this.secrets));
    this.mirror?.section?.(title);
  }

  /** Fold the action's own work (preparing the runner, the cache) the way steps fold. */
  async group<T>(title: string, work: () => Promise<T>): Promise<T> {
    this.openGroup(title);
    try {
      return await work();
    } finally {
      this.closeGroup();
    }
  }

  /** Close whatever group is open, so that what follows is not hidden in it. */
  closeGroup(): void {
    if (this.groupOpen) core.endGroup();
    this.groupOpen = false;
  }

  private openGroup(title: string): void {
    // Groups do not nest in the log: a new one ends the last.
    this.closeGroup();
    core.startGroup(printableLine(title));
    this.groupOpen = true;
  }
}
