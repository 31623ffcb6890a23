import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RsyncModule {
  path: string;
  readOnly?: boolean;
  /** user → password; makes the module need them (`auth users` + `secrets file`). */
  secrets?: Record<string, string>;
  /** More `key = value` lines for the module, e.g. `'post-xfer exec': '/path/script'`. */
  parameters?: Record<string, string>;
}

export interface RsyncDaemon {
  port: number;
  /** `rsync://127.0.0.1:PORT/<module>/`, with `user[:password]@` when given. */
  url(module: string, user?: string, password?: string): string;
  /** The daemon's log; with `transfer logging`, one `transfer <op> <module> <file> <bytes>` line per file. */
  logFile: string;
  stop(): Promise<void>;
}

/** Something with `after(fn)`: a node:test TestContext or SuiteContext. */
export interface Teardown {
  after(fn: () => unknown): void;
}

/** A TCP port nobody listens on right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on 127.0.0.1:port; rejects when `exited` says the server died. */
export async function waitForPort(port: number, exited: () => string | undefined, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = exited();
    if (why !== undefined) throw new Error(why);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** How many processes are in a process group (Linux /proc). */
async function groupMembers(pgid: number): Promise<number> {
  let count = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid pgrp …: comm may hold spaces, so count from its closing parenthesis.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid) count += 1;
  }
  return count;
}

/**
 * Start a server as its own process group, so that stopping it also ends the
 * children it forked per connection; and stop it if the test process exits.
 */
export function spawnServer(argv: string[]): {
  child: ChildProcess;
  output: () => string;
  exited: () => string | undefined;
  stop: () => Promise<void>;
} {
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exit: string | undefined;
  const closed = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = `${argv[0]} exited (${signal ?? code}): ${output.trim()}`;
      resolve();
    });
    child.once('error', (error) => {
      exit = `${argv[0]} did not start: ${error.message}`;
      resolve();
    });
  });
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  const onExit = (): void => killGroup('SIGKILL');
  process.once('exit', onExit);
  const stop = async (): Promise<void> => {
    process.removeListener('exit', onExit);
    // Let connections that are closing end and be reaped by the server, rather than leave zombies to init.
    for (
      let i = 0;
      i < 40 && child.pid !== undefined && exit === undefined && (await groupMembers(child.pid)) > 1;
      i += 1
    ) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    killGroup('SIGTERM');
    const timer = setTimeout(() => killGroup('SIGKILL'), 3000);
    await closed;
    clearTimeout(timer);
    // Children of the group (a connection still closing) go too.
    killGroup('SIGKILL');
  };
  return { child, output: () => output, exited: () => exit, stop };
}

/**
 * Start a server, wait until it accepts connections on `port`, and return
 * its idempotent stop (which also removes `dir`, its folder of files);
 * with `t`, it stops when the test ends.
 */
export async function serveOnPort(
  argv: string[],
  port: number,
  dir: string,
  t: Teardown | undefined,
): Promise<() => Promise<void>> {
  const server = spawnServer(argv);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
  t?.after(stop);
  try {
    await waitForPort(port, server.exited);
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}

/**
 * A real `rsync --daemon` on 127.0.0.1 with the given modules, running as
 * root (uid/gid root, no chroot). Stops when the test ends when `t` is given.
 */
export async function startRsyncDaemon(
  t: Teardown | undefined,
  modules: Record<string, RsyncModule>,
  options: { port?: number } = {},
): Promise<RsyncDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'rsyncd-'));
  const logFile = join(dir, 'rsyncd.log');
  const lines = [
    'use chroot = no',
    'uid = root',
    'gid = root',
    `log file = ${logFile}`,
    'transfer logging = yes',
    'log format = transfer %o %m %f %l',
    '',
  ];
  for (const [name, module] of Object.entries(modules)) {
    lines.push(`[${name}]`, `path = ${module.path}`, `read only = ${module.readOnly ? 'yes' : 'no'}`);
    if (module.secrets) {
      const secretsFile = join(dir, `${name}.secrets`);
      await writeFile(
        secretsFile,
        Object.entries(module.secrets)
          .map(([user, password]) => `${user}:${password}\n`)
          .join(''),
        { mode: 0o600 },
      );
      lines.push(`auth users = ${Object.keys(module.secrets).join(', ')}`, `secrets file = ${secretsFile}`);
    }
    for (const [key, value] of Object.entries(module.parameters ?? {})) lines.push(`${key} = ${value}`);
    lines.push('');
  }
  const config = join(dir, 'rsyncd.conf');
  await writeFile(config, lines.join('\n'));

  const port = options.port ?? (await freePort());
  const stop = await serveOnPort(
    ['rsync', '--daemon', '--no-detach', `--config=${config}`, `--port=${port}`, '--address=127.0.0.1'],
    port,
    dir,
    t,
  );
  return {
    port,
    logFile,
    url: (module, user, password) =>
      `rsync://${user === undefined ? '' : `${user}${password === undefined ? '' : `:${password}`}@`}127.0.0.1:${port}/${module}/`,
    stop,
  };
}
