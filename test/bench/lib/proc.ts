import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { formatCommand } from '../../../src/host/command-error.js';

/** GNU time: the only portable way to get a command's own peak RSS from the outside (wait4's ru_maxrss). */
export const GNU_TIME = '/usr/bin/time';
const RSS_MARK = '@@bench-maxrss-kib=';

export interface Measured {
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
  /** Peak resident set size of the command (and any children it waited for), KiB. */
  maxRssKiB: number;
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  allowFailure?: boolean;
  /** Wrap in /usr/bin/time to learn the command's peak RSS. */
  measureRss?: boolean;
  /** Pass stderr through to ours (progress of long commands). */
  inheritStderr?: boolean;
  /** Written to the command's standard input. */
  input?: string;
}

export class BenchCommandError extends Error {
  constructor(argv: readonly string[], code: number | null, stderr: string) {
    const tail = stderr.trim().split('\n').slice(-10).join('\n  | ');
    super(`'${formatCommand(argv)}' exited with code ${code}${tail ? `:\n  | ${tail}` : ''}`);
    this.name = 'BenchCommandError';
  }
}

const active = new Set<ChildProcess>();

/** Stop every command still running (on Ctrl-C, before cleaning up). */
export async function stopAll(): Promise<void> {
  const waiting = [...active].map(
    (child) =>
      new Promise<void>((done) => {
        child.once('close', () => done());
        child.kill('SIGTERM');
        setTimeout(() => {
          child.kill('SIGKILL');
          done();
        }, 5000).unref();
      }),
  );
  await Promise.all(waiting);
}

/** Run a command to completion, timing it; stdout and stderr are kept (bench commands print little). */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<Measured> {
  const command = options.measureRss ? [GNU_TIME, '-f', `${RSS_MARK}%M`, ...argv] : [...argv];
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(command[0], command.slice(1), {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [
        options.input === undefined ? 'ignore' : 'pipe',
        'pipe',
        options.inheritStderr && !options.measureRss ? 'inherit' : 'pipe',
      ],
    });
    active.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    if (options.input !== undefined) child.stdin?.end(options.input);
    child.on('error', (error) => {
      active.delete(child);
      reject(new Error(`${argv[0]}: ${error.message}`));
    });
    child.on('close', (code) => {
      active.delete(child);
      const ms = performance.now() - started;
      let stderr = Buffer.concat(err).toString('utf8');
      let maxRssKiB = 0;
      if (options.measureRss) {
        const at = stderr.lastIndexOf(RSS_MARK);
        if (at >= 0) {
          maxRssKiB = Number(stderr.slice(at + RSS_MARK.length).trim());
          stderr = stderr.slice(0, at).replace(/Command exited with non-zero status \d+\n$/, '');
        }
      }
      const result: Measured = { ms, maxRssKiB, exitCode: code, stdout: Buffer.concat(out).toString('utf8'), stderr };
      if (code !== 0 && !options.allowFailure) reject(new BenchCommandError(argv, code, stderr));
      else resolvePromise(result);
    });
  });
}

/** Run a command for its output; throws on failure. */
export async function output(argv: readonly string[], options: RunOptions = {}): Promise<string> {
  return (await run(argv, options)).stdout;
}

/** The absolute path of a program on PATH, or undefined. */
export function which(name: string, path = process.env.PATH ?? ''): string | undefined {
  if (name.includes('/')) return canExecute(name) ? name : undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (canExecute(candidate)) return candidate;
  }
  return undefined;
}

function canExecute(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
