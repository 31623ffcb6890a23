import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  link,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { Reporter } from '../common/reporter.js';
import { CommandError, formatCommand } from './command-error.js';
import { runCommand, type RunResult } from './exec.js';
import { startGuestfishShell } from './guestfish-shell.js';
import { currentUid, type FileInfo, type GuestfishShell, type Host, type HostRunOptions } from './host.js';
import { sudoersLine } from './privileges.js';

/** The real machine: commands run, files are written. */
export class SystemHost implements Host {
  readonly isRoot: boolean;
  readonly live = true;

  constructor(
    readonly reporter: Reporter,
    readonly signal?: AbortSignal,
    uid = currentUid(),
  ) {
    this.isRoot = uid === 0;
  }

  uninterruptible(): Host {
    return new SystemHost(this.reporter, undefined, this.isRoot ? 0 : 1);
  }

  async run(argv: readonly string[], options: HostRunOptions = {}): Promise<RunResult> {
    const command = options.root && !this.isRoot ? ['sudo', '-n', ...argv] : [...argv];
    if (!options.quiet) this.reporter.command(command);
    try {
      return await runCommand(command, { signal: this.signal, ...options });
    } catch (error) {
      if (error instanceof CommandError && command[0] === 'sudo' && sudoRefused(error.lastLines)) {
        throw new CommandError(command, error.exitCode, error.signal, [
          ...error.lastLines,
          `'${formatCommand(argv)}' needs root, and sudo does not allow it without a password.`,
          `Allow the build's root commands in sudoers (visudo -f /etc/sudoers.d/image-factory): ${sudoersLine()}`,
        ]);
      }
      throw error;
    }
  }

  guestfish(env: readonly string[]): Promise<GuestfishShell> {
    return startGuestfishShell(env);
  }

  uniqueSuffix(bytes: number): string {
    return randomBytes(bytes).toString('hex');
  }

  makeTempDir(prefix: string): Promise<string> {
    return mkdtemp(prefix);
  }

  async makeDir(path: string, mode: number): Promise<void> {
    await mkdir(path, { mode });
  }

  async makeDirs(path: string, mode: number): Promise<void> {
    const first = await mkdir(path, { recursive: true, mode });
    // mkdir's mode is filtered by the umask; each folder made here gets `mode` itself.
    if (first === undefined) return;
    for (let dir = path; dir.startsWith(first); dir = join(dir, '..')) {
      if ((await lstat(dir)).isDirectory()) await chmod(dir, mode);
      if (dir === first) break;
    }
  }

  chmod(path: string, mode: number): Promise<void> {
    return chmod(path, mode);
  }

  chown(path: string, uid: number, gid: number): Promise<void> {
    return chown(path, uid, gid);
  }

  writeFile(path: string, content: string | Uint8Array, mode: number): Promise<void> {
    // 'wx': never through an existing file or symlink.
    return writeFile(path, content, { mode, flag: 'wx' });
  }

  readFile(path: string): Promise<Buffer> {
    return readFile(path);
  }

  async readRange(path: string, offset: number, length: number): Promise<Buffer> {
    const file = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, offset);
      return buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  }

  copyFile(from: string, to: string): Promise<void> {
    // A reflink where the file system has them (a cached installer copied in no time), a copy elsewhere.
    return copyFile(from, to, constants.COPYFILE_FICLONE);
  }

  setTimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    // utimes() takes seconds as a double.
    return utimes(path, atimeMs / 1000, mtimeMs / 1000);
  }

  replace(from: string, to: string): Promise<void> {
    return rename(from, to);
  }

  remove(path: string): Promise<void> {
    return rm(path, { recursive: true, force: true });
  }

  async publish(from: string, to: string): Promise<void> {
    // link() refuses to replace an existing file: nothing under a final name is ever overwritten.
    await link(from, to);
    await unlink(from);
  }

  async stat(path: string): Promise<FileInfo> {
    const info = await stat(path);
    return { size: info.size, blocks: info.blocks, uid: info.uid, gid: info.gid };
  }
}

function sudoRefused(lines: readonly string[]): boolean {
  return lines.some((line) => /password is required|not allowed|may not run/.test(line));
}
