import { spawn } from 'node:child_process';
import { CLI } from './fixture.js';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with the child once it runs, e.g. to send it a signal. */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
  /** The program and leading arguments to run instead of `node dist/cli/index.js` (e.g. through runuser). */
  command?: string[];
  /** Called with each chunk of stderr as it arrives. */
  onStderr?: (text: string, child: import('node:child_process').ChildProcess) => void;
}

/** Run the bundled `image-factory` command as a user would. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const [program, ...leading] = options.command ?? [process.execPath, CLI];
    const child = spawn(program, [...leading, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      stderr += text;
      options.onStderr?.(text, child);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    options.onSpawn?.(child);
  });
}

/**
 * The stem of the files a build made (`<image>[-aarch64]-<date>`), read from
 * the line it starts with (`Building image NAME (…) as STEM.qcow2 … in DIR`): the date
 * in it is the build's start, which the test's clock after the build is not
 * when the build ran past midnight.
 */
export function builtStem(log: string, image: string): string {
  const escaped = image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`Building image ${escaped} \\([^)]*\\) as (\\S+?)\\.[A-Za-z0-9]+(?:, | in )`).exec(log);
  if (!match) throw new Error(`the build of ${image} never said what it builds ("Building image ${image} … as …")`);
  return match[1];
}
