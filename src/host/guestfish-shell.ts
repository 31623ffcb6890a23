import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { GuestfishShell, ShellReply } from './host.js';

/**
 * guestfish's shell, driven over its standard input: each command is sent
 * prefixed with `-` (a failure does not end the shell), then `echo NONCE`,
 * whose line ends the command's standard output, then `-NONCE`, an unknown
 * command whose error ends its standard error. The nonce is random: nothing
 * the guest holds (a file name, a symlink target printed by a command) can
 * forge the end of a reply. guestfish flushes its output after each command.
 */

/**
 * One argument in guestfish's double quotes: `\\`, `\"` and every byte outside
 * printable ASCII as `\xHH` (guestfish decodes them back to the same bytes), so
 * that a name may hold blanks, quotes, `|`, `#` or newlines and stay one argument.
 */
export function quoteArgument(arg: string): string {
  let out = '"';
  for (const byte of Buffer.from(arg, 'utf8')) {
    if (byte === 0x5c) out += '\\\\';
    else if (byte === 0x22) out += '\\"';
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${out}"`;
}

/** An error line of guestfish's (libguestfs's error, or guestfish's own), without its `*stdin*:N: ` prefix. */
const ERROR_LINE = /^(?:\*stdin\*:\d+: )?((?:libguestfs: error: |guestfish: ).*)$/;

interface Pending {
  marker: string;
  resolve: (reply: ShellReply) => void;
  reject: (error: Error) => void;
}

class SystemGuestfishShell implements GuestfishShell {
  readonly pid: string;
  calls = 0;
  private stdout = '';
  private stderr = '';
  private readonly queue: Pending[] = [];
  private readonly session = randomBytes(12).toString('hex');
  private ended: Error | undefined;
  private readonly exited: Promise<void>;

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.pid = String(child.pid);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.stdout += chunk;
      this.settle();
    });
    child.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
      this.settle();
    });
    // A write after the shell died fails the pending call (below), not the process.
    child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        const last = this.stderr.trim().split('\n').slice(-5).join(' ');
        this.ended = new Error(
          `guestfish exited (${signal ? `signal ${signal}` : `exit code ${code}`})${last ? `: ${last}` : ''}`,
        );
        for (const pending of this.queue.splice(0)) pending.reject(this.ended);
        resolve();
      });
    });
  }

  /** Resolve the oldest pending call once both its markers have come. */
  private settle(): void {
    while (this.queue.length) {
      const { marker, resolve } = this.queue[0];
      // The nonce cannot be guessed: found anywhere, it is the end (a command's last line may lack its newline).
      const outEnd = this.stdout.indexOf(`${marker}\n`);
      const errMark = `${marker}: unknown command\n`;
      const errEnd = this.stderr.indexOf(errMark);
      if (outEnd < 0 || errEnd < 0) return;
      const stdout = this.stdout.slice(0, outEnd);
      const errors = this.stderr
        .slice(0, errEnd)
        .split('\n')
        .map((line) => ERROR_LINE.exec(line)?.[1])
        .filter((line): line is string => line !== undefined);
      this.stdout = this.stdout.slice(outEnd + marker.length + 1);
      this.stderr = this.stderr.slice(errEnd + errMark.length);
      this.queue.shift();
      resolve({ stdout, errors });
    }
  }

  call(command: string, args: readonly string[]): Promise<ShellReply> {
    if (this.ended) return Promise.reject(this.ended);
    const marker = `ifx${this.session}n${++this.calls}`;
    return new Promise((resolve, reject) => {
      this.queue.push({ marker, resolve, reject });
      this.child.stdin.write(`-${command} ${args.map(quoteArgument).join(' ')}\necho ${marker}\n-${marker}\n`);
    });
  }

  async exit(ms: number): Promise<void> {
    if (!this.ended) this.child.stdin.end('exit\n');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }
}

/** Start guestfish's shell with `env` (NAME=value) added to this process's environment. */
export async function startGuestfishShell(env: readonly string[]): Promise<GuestfishShell> {
  const extra = Object.fromEntries(
    env.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
  const child = spawn('guestfish', [], { env: { ...process.env, ...extra }, stdio: ['pipe', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return new SystemGuestfishShell(child);
}
