import { main } from '../../src/cli/main.js';

export interface InProcessRun {
  /** The exit code main() returned; undefined when it threw instead. */
  code?: number;
  /** What main() threw (a crash), if anything. */
  thrown?: unknown;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds of the call. */
  ms: number;
  /**
   * CPU milliseconds the process spent in the call (user + system): the bound the tests hold a run
   * to, because a loaded machine stretches the wall clock but not the work.
   */
  cpuMs: number;
}

/**
 * Run the command's main() in this process with `env` set for the call,
 * keeping what it writes to stdout and stderr: much faster than spawning
 * the command, so that property tests can try thousands of inputs.
 */
export async function runMain(argv: string[], env: Record<string, string | undefined> = {}): Promise<InProcessRun> {
  const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  for (const [key, value] of Object.entries(env)) setEnv(key, value);
  const out: string[] = [];
  const err: string[] = [];
  const started = performance.now();
  const cpu = process.cpuUsage();
  const run: InProcessRun = { stdout: '', stderr: '', ms: 0, cpuMs: 0 };
  try {
    run.code = await main(argv, { out: (text) => out.push(text), err: (text) => err.push(text) });
  } catch (error) {
    run.thrown = error;
  } finally {
    for (const [key, value] of Object.entries(saved)) setEnv(key, value);
  }
  run.ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  run.cpuMs = (used.user + used.system) / 1000;
  run.stdout = out.join('');
  run.stderr = err.join('');
  return run;
}

function setEnv(key: string, value: string | undefined): void {
  if (value === undefined) delete process.env[key];
  else process.env[key] = value;
}

/** A stack trace or an unexpected error in what the command wrote. */
export function looksLikeCrash(text: string): boolean {
  return /\n\s+at .+[:(]/.test(text) || /unexpected error/.test(text) || /\b[A-Z][a-zA-Z]*Error: /.test(text);
}
