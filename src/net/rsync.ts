import { CommandError } from '../host/command-error.js';
import { rsyncCredentials, secretVariants } from '../common/credentials.js';

/** A stalled connection fails after this many seconds instead of hanging the build. */
export const RSYNC_TIMEOUT_SECONDS = 300;

/** What rsync prints with --progress: `  12,345,678  45%  11.2MB/s  0:00:03`. */
const PROGRESS_LINE = /^\s*[0-9][0-9,.]*[A-Za-z]?\s+[0-9]+%/;

export function isRsyncProgressLine(line: string): boolean {
  return PROGRESS_LINE.test(line);
}

/** One end of a transfer as rsync is given it: never with a password in it. */
export interface RsyncEndpoint {
  /** The source or target without its password (rsync reads that from RSYNC_PASSWORD). */
  uri: string;
  /** The environment for rsync: process.env, plus RSYNC_PASSWORD when the URI has a password. */
  env: NodeJS.ProcessEnv;
  /** The password in every form it could take in rsync's output: mask these. */
  secrets: string[];
}

export function rsyncEndpoint(uri: string): RsyncEndpoint {
  const credentials = rsyncCredentials(uri);
  return {
    uri: credentials.uri,
    env: credentials.env.RSYNC_PASSWORD === undefined ? process.env : { ...process.env, ...credentials.env },
    secrets: secretVariants(uri),
  };
}

/**
 * `rsync [user's arguments] --no-motd [flags] --timeout=300 [after] operands…`:
 * the user's arguments come first, so that ours win where they overlap.
 */
export function rsyncArgv(options: {
  userArgs?: readonly string[];
  flags?: readonly string[];
  after?: readonly string[];
  operands: readonly string[];
}): string[] {
  return [
    'rsync',
    ...(options.userArgs ?? []),
    '--no-motd',
    ...(options.flags ?? []),
    `--timeout=${RSYNC_TIMEOUT_SECONDS}`,
    ...(options.after ?? []),
    ...options.operands,
  ];
}

/** rsync's own last lines, minus the progress meter, for a message. */
export function describeRsyncFailure(error: unknown): string {
  return describeCommandFailure(error, 'rsync');
}

/** How a program failed, with its last lines (minus rsync's progress meter). */
export function describeCommandFailure(error: unknown, program: string): string {
  if (!(error instanceof CommandError)) return error instanceof Error ? error.message : String(error);
  const how = error.signal
    ? `was killed by ${error.signal}`
    : error.exitCode === null
      ? 'did not start'
      : `exited with code ${error.exitCode}`;
  const lines = error.lastLines.filter((line) => !PROGRESS_LINE.test(line)).slice(-4);
  return `${program} ${how}${lines.length ? `: ${lines.join(' / ')}` : ''}`;
}

/** Failures that another try cannot mend, whatever the exit code. */
const PERMANENT_RSYNC =
  /@?ERROR: (?:Unknown module|auth failed|module is read only|access denied|chroot failed|chdir failed)|Permission denied|Host key verification failed|Could not resolve hostname|No such file or directory|Read-only file system|No space left on device|Disk quota exceeded|command not found|protocol version mismatch/i;
/** A connection that did not come up or broke. */
const NETWORK_FAILURE =
  /Connection refused|Connection reset|Connection timed out|timed out|max connections|Broken pipe|connection unexpectedly closed|No route to host|Network is unreachable/i;

/**
 * Whether an rsync failure is worth another try: socket I/O (10), protocol
 * stream (12), partial transfer (23, 24), timeouts (30, 35) — unless its
 * message shows a permanent cause (missing file, permission, unknown module…)
 * — and "error starting client-server protocol" (5, or 255 from ssh) only when
 * the connection was refused or reset.
 */
export function isTransientRsyncFailure(error: unknown): boolean {
  if (!(error instanceof CommandError) || error.exitCode === null) return false;
  const text = error.lastLines.join('\n');
  if (PERMANENT_RSYNC.test(text)) return false;
  switch (error.exitCode) {
    case 10:
    case 12:
    case 23:
    case 24:
    case 30:
    case 35:
      return true;
    case 5:
    case 255:
      // A daemon that answered with @ERROR (other than "max connections") said no on purpose.
      return NETWORK_FAILURE.test(text) && !/@ERROR:(?!.*max connections)/.test(text);
    default:
      return false;
  }
}
