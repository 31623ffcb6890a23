import { spawn, type ChildProcess } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { CommandError, formatCommand } from './command-error.js';

export interface RunOptions {
  /** Called with every complete line the command prints (stdout and stderr). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Aborting kills the command (SIGTERM, then SIGKILL after 5 s). */
  signal?: AbortSignal;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep stdout whole (for machine-readable output such as `sfdisk --json`). */
  captureStdout?: boolean;
  /** Non-zero exit is returned instead of thrown. */
  allowFailure?: boolean;
  /** How many trailing output lines an error quotes. */
  tailLines?: number;
  input?: string;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  lastLines: string[];
}

/**
 * Run one external program. Output is streamed line by line (a `\r` counts as
 * a line end too, so progress meters arrive as they are drawn) and the last
 * lines are kept for the error message.
 */
export function runCommand(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const keep = options.tailLines ?? 20;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortError(argv));
      return;
    }
    const child = spawn(argv[0], argv.slice(1), {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const lastLines: string[] = [];
    let stdout = '';
    const remember = (line: string, stream: 'stdout' | 'stderr'): void => {
      if (line.trim() === '') return;
      lastLines.push(line);
      if (lastLines.length > keep) lastLines.shift();
      options.onLine?.(line, stream);
    };
    const out = lineSplitter((line) => remember(line, 'stdout'));
    const err = lineSplitter((line) => remember(line, 'stderr'));
    child.stdout?.on('data', (chunk: Buffer) => {
      if (options.captureStdout) stdout += chunk.toString('utf8');
      else out.push(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    if (options.input !== undefined && child.stdin) {
      child.stdin.end(options.input);
    }

    const stopKilling = killOnAbort(child, options.signal);
    child.on('error', (error: NodeJS.ErrnoException) => {
      stopKilling();
      const why = error.code === 'ENOENT' ? `${argv[0]} is not installed (or not on PATH)` : error.message;
      reject(new CommandError(argv, null, null, [why]));
    });
    child.on('close', (code, signal) => {
      stopKilling();
      out.end();
      err.end();
      if (options.signal?.aborted) {
        reject(abortError(argv));
        return;
      }
      const result: RunResult = { exitCode: code, signal, stdout, lastLines };
      if ((code !== 0 || signal) && !options.allowFailure) {
        reject(new CommandError(argv, code, signal, lastLines));
        return;
      }
      resolve(result);
    });
  });
}

/** Aborting kills the child: SIGTERM, then SIGKILL after 5 s. Returns what stops that once the child is gone. */
function killOnAbort(child: ChildProcess, signal: AbortSignal | undefined): () => void {
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
    killTimer.unref();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  return () => {
    signal?.removeEventListener('abort', onAbort);
    if (killTimer) clearTimeout(killTimer);
  };
}

/** Splits a stream into lines as they arrive; a `\r` ends a line too, so progress meters come as they are drawn. */
function lineSplitter(onLine: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  return {
    push(chunk) {
      const parts = (pending + decoder.write(chunk)).split(/\r\n|\n|\r/);
      pending = parts.pop() ?? '';
      for (const part of parts) onLine(part);
    },
    end() {
      pending += decoder.end();
      if (pending) onLine(pending);
      pending = '';
    },
  };
}

export class AbortedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AbortedError';
  }
}

function abortError(argv: readonly string[]): AbortedError {
  return new AbortedError(`interrupted while running '${formatCommand(argv)}'`);
}
