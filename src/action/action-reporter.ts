import * as core from '@actions/core';
import { formatDuration } from '../config/units.js';
import { formatCommand } from '../host/command-error.js';
import { STEP_TITLES, type Reporter, type Step } from '../pipeline/reporter.js';

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
 * with the time, so a line that an installer or command prints can never be
 * taken by the runner for a workflow command (`::…`). Optionally mirrors
 * everything into a log file (the `log-file` input).
 */
export class ActionReporter implements Reporter {
  /** Steps that finished, in order, for the job summary. */
  readonly steps: StepRecord[] = [];
  private groupOpen = false;

  constructor(private readonly mirror?: Reporter) {}

  private print(message: string): void {
    const stamp = clock();
    for (const line of message.split('\n')) core.info(`[${stamp}] ${line}`);
  }

  info(message: string): void {
    this.print(message);
    this.mirror?.info(message);
  }

  notice(message: string): void {
    core.notice(message);
    this.mirror?.notice(message);
  }

  warning(message: string): void {
    core.warning(message);
    this.mirror?.warning(message);
  }

  error(message: string): void {
    core.error(message);
    this.mirror?.error(message);
  }

  command(argv: readonly string[]): void {
    this.print(`$ ${formatCommand(argv)}`);
    this.mirror?.command(argv);
  }

  output(line: string): void {
    this.print(`  ${line}`);
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
    this.print(`${step}: ${message}`);
    this.mirror?.progress(step, message);
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
    core.startGroup(title);
    this.groupOpen = true;
  }
}
