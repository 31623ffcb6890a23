import type { RunOptions, RunResult } from './exec.js';

export interface HostRunOptions extends RunOptions {
  /** The command needs root: prefixed with `sudo -n` when this process is not root. */
  root?: boolean;
  /** Do not log the command line (for probes whose output is parsed). */
  quiet?: boolean;
  /** The command only reads (a probe): the recording host may run it for real when its plan says so. */
  readOnly?: boolean;
}

/** What the steps need to know of a file they made. */
export interface FileInfo {
  size: number;
  /** 512-byte blocks allocated (less than size / 512 for a sparse file). */
  blocks: number;
  uid: number;
  gid: number;
}

/**
 * Everything a build does to the machine goes through a Host: the programs it
 * starts and the files and folders it creates, changes or removes outside
 * those programs. `SystemHost` does it; `RecordingHost` logs it and answers
 * from a plan, which is what `--dry-run` and the step tests run on (Packer's
 * Driver and DriverMock).
 */
export interface Host {
  readonly isRoot: boolean;
  /**
   * false on the recording host. Steps read it only where a real build waits
   * for something a recording cannot produce (a VM's console, a file's
   * contents to hash); everything else runs the same code on both.
   */
  readonly live: boolean;
  run(argv: readonly string[], options?: HostRunOptions): Promise<RunResult>;
  /** The same host, but deaf to the interruption: cleanup must run to the end after Ctrl-C. */
  uninterruptible(): Host;
  /** Random hex that keeps two builds on one host apart (domain and folder names). */
  uniqueSuffix(bytes: number): string;
  /** A new private folder `<prefix>XXXXXX`, as mkdtemp makes it. */
  makeTempDir(prefix: string): Promise<string>;
  /** A new folder; fails when the path exists (it is not this build's to remove). */
  makeDir(path: string, mode: number): Promise<void>;
  /** A folder and its missing parents (mkdir -p), each new one with `mode` whatever the umask. */
  makeDirs(path: string, mode: number): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  writeFile(path: string, content: string | Uint8Array, mode: number): Promise<void>;
  /** The contents of a file the build made (a screenshot virsh wrote). */
  readFile(path: string): Promise<Buffer>;
  copyFile(from: string, to: string): Promise<void>;
  /** A file's access and modification times, in ms since the epoch (a copy keeps its original's). */
  setTimes(path: string, atimeMs: number, mtimeMs: number): Promise<void>;
  /** Rename a file, replacing what has the name: for a cache's own files, never for a published one. */
  replace(from: string, to: string): Promise<void>;
  /** `rm -rf`: removing what is already gone succeeds. */
  remove(path: string): Promise<void>;
  /** Move a finished file to its final name; refuses (EEXIST) to replace anything. */
  publish(from: string, to: string): Promise<void>;
  stat(path: string): Promise<FileInfo>;
  /** `length` bytes of a file the build made, from `offset` (fewer at its end). */
  readRange(path: string, offset: number, length: number): Promise<Buffer>;
  /**
   * Start guestfish's own shell with `env` added to its environment: one
   * process for an appliance's whole life, given one command at a time (a
   * `guestfish --remote` process per command costs 0.3–1 s under TCG).
   */
  guestfish(env: readonly string[]): Promise<GuestfishShell>;
}

/** What one command printed in guestfish's shell. */
export interface ShellReply {
  stdout: string;
  /** Its error lines (libguestfs's and guestfish's), without the `*stdin*:N:` prefix. */
  errors: string[];
}

/** A running guestfish shell (`Host.guestfish`). */
export interface GuestfishShell {
  readonly pid: string;
  /** Run one command; a failure does not end the shell, it is in the reply's errors. */
  call(command: string, args: readonly string[]): Promise<ShellReply>;
  /** How many commands the shell has run (each a round trip to the appliance, most of them). */
  readonly calls: number;
  /** Ask the shell to exit (it shuts its appliance down) and wait for it, at most `ms`. */
  exit(ms: number): Promise<void>;
}

/** The uid the build runs as. */
export function currentUid(): number {
  return process.getuid?.() ?? 0;
}
