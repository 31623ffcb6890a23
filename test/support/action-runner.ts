/**
 * A stand-in for the GitHub Actions runner, and the only one the action tests
 * use (with the cache service stand-in in cache-service.ts): everything else —
 * the bundled dist/ entry points, @actions/*, libvirt, QEMU — is real. It
 * does what the runner does for a `node24` action: fills in the defaults of
 * action.yml, passes inputs as INPUT_<NAME> variables (upper case, spaces to
 * underscores, hyphens kept), gives the step fresh file-command files
 * (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_STEP_SUMMARY…), reads them back
 * afterwards, and runs the post step with the saved state as STATE_<name>.
 * Cancelling sends SIGINT, then SIGTERM 7.5 s later, then kills the process
 * tree 2.5 s after that, as the runner does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from './fixture.js';

export const MAIN = join(REPO_ROOT, 'dist', 'main', 'index.js');
export const POST = join(REPO_ROOT, 'dist', 'post', 'index.js');

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  properties: string;
  message: string;
}

export interface StepRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  /** The job summary the step appended (Markdown/HTML). */
  summary: string;
  annotations: Annotation[];
  durationMs: number;
}

export interface StepOptions {
  /** The workspace (the step's working folder); a fresh one when not given. */
  workspace?: string;
  /** Extra environment (e.g. ACTIONS_CACHE_URL of the stand-in service, IMAGE_FACTORY_CONFIG). */
  env?: Record<string, string>;
  /** Called with each chunk of stdout as it arrives, e.g. to cancel the step at a given line. */
  onStdout?: (text: string, child: ChildProcess) => void;
}

/** The defaults action.yml declares, with `${{ github.workspace }}` filled in. */
function actionDefaults(workspace: string): Record<string, string> {
  const action = parseYaml(readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { default?: string }>;
  };
  const defaults: Record<string, string> = {};
  for (const [name, input] of Object.entries(action.inputs)) {
    if (input.default === undefined) continue;
    defaults[name] = String(input.default).replace(/\$\{\{\s*github\.workspace\s*\}\}/g, workspace);
  }
  return defaults;
}

export function inputVariable(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/** The test's own environment minus anything a real runner would set per step. */
function baseEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(INPUT_|STATE_|GITHUB_|ACTIONS_|RUNNER_)/.test(key)) continue;
    env[key] = value;
  }
  return env;
}

/** Files written with core.setOutput / core.saveState: `name=value` or `name<<DELIMITER` … `DELIMITER`. */
export function parseFileCommands(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (line === '') continue;
    const heredoc = /^([^=]+?)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc;
      const body: string[] = [];
      for (i += 1; i < lines.length && lines[i] !== delimiter; i += 1) body.push(lines[i]);
      if (i >= lines.length) throw new Error(`unterminated value of ${name} in a file command`);
      values[name] = body.join('\n');
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`unreadable file command line: ${line}`);
    values[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return values;
}

function unescapeData(text: string): string {
  return text.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

/** The annotations among the workflow commands a step printed. */
export function parseAnnotations(stdout: string): Annotation[] {
  const found: Annotation[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^::(error|warning|notice)(?: ([^:]*))?::(.*)$/.exec(line);
    if (match)
      found.push({
        level: match[1] as Annotation['level'],
        properties: match[2] ?? '',
        message: unescapeData(match[3]),
      });
  }
  return found;
}

/** Stops a step the way the runner cancels one. */
export function cancelLikeRunner(child: ChildProcess): void {
  const timers: NodeJS.Timeout[] = [];
  child.once('exit', () => timers.forEach(clearTimeout));
  child.kill('SIGINT');
  timers.push(
    setTimeout(() => {
      child.kill('SIGTERM');
      timers.push(setTimeout(() => killTree(child), 2500));
    }, 7500),
  );
}

/** SIGKILL for the step and everything it started (the step runs in its own process group). */
export function killTree(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

const runnerDirs: string[] = [];

/** Remove the runner folders (temp, tool cache, file commands) of every step run so far. */
export function removeRunnerDirs(): void {
  for (const dir of runnerDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

function runStep(
  script: string,
  inputs: Record<string, string>,
  env: NodeJS.ProcessEnv,
  options: StepOptions,
): Promise<StepRun> {
  const runnerDir = mkdtempSync(join(tmpdir(), 'action-runner-'));
  runnerDirs.push(runnerDir);
  const workspace = options.workspace ?? join(runnerDir, 'workspace');
  const files = join(runnerDir, 'file_commands');
  for (const dir of [workspace, files, join(runnerDir, 'temp'), join(runnerDir, 'tool-cache')])
    mkdirSync(dir, { recursive: true });
  const commandFiles = {
    GITHUB_OUTPUT: 'output',
    GITHUB_STATE: 'state',
    GITHUB_STEP_SUMMARY: 'summary',
    GITHUB_ENV: 'env',
    GITHUB_PATH: 'path',
  };
  for (const name of Object.values(commandFiles)) writeFileSync(join(files, name), '');

  const stepEnv: NodeJS.ProcessEnv = {
    ...env,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_TEMP: join(runnerDir, 'temp'),
    RUNNER_TOOL_CACHE: join(runnerDir, 'tool-cache'),
    GITHUB_WORKSPACE: workspace,
    ...options.env,
  };
  for (const [variable, name] of Object.entries(commandFiles)) stepEnv[variable] = join(files, name);
  const withDefaults = { ...actionDefaults(workspace), ...inputs };
  for (const [name, value] of Object.entries(withDefaults)) stepEnv[inputVariable(name)] = value;

  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      cwd: workspace,
      env: stepEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      stdout += text;
      options.onStdout?.(text, child);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const read = (name: string): string => readFileSync(join(files, name), 'utf8');
      resolve({
        code,
        signal,
        stdout,
        stderr,
        outputs: parseFileCommands(read('output')),
        state: parseFileCommands(read('state')),
        summary: read('summary'),
        annotations: parseAnnotations(stdout),
        durationMs: Date.now() - started,
      });
    });
  });
}

/** Run the main step (dist/main/index.js) with these inputs. */
export function runMain(inputs: Record<string, string>, options: StepOptions = {}): Promise<StepRun> {
  return runStep(MAIN, inputs, baseEnvironment(), options);
}

/** Run the post step (dist/post/index.js) with the state the main step saved, as STATE_<name>. */
export function runPost(
  inputs: Record<string, string>,
  state: Record<string, string>,
  options: StepOptions = {},
): Promise<StepRun> {
  const env = baseEnvironment();
  for (const [name, value] of Object.entries(state)) env[`STATE_${name}`] = value;
  return runStep(POST, inputs, env, options);
}
