import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { redactUri, type UploadDestination } from '../config/image-spec.js';
import { formatDuration } from '../config/units.js';
import { CommandError, formatCommand } from '../host/command-error.js';
import { AbortedError } from '../host/exec.js';
import type { HostRunOptions } from '../host/host.js';
import type { BuildContext } from './context.js';
import { throttled } from './reporter.js';

export interface UploadOutcome {
  /** Section name of the destination. */
  destination: string;
  /** upload_target with any password replaced. */
  target: string;
  ok: boolean;
  error?: string;
  /** rsync runs for this destination, retries included (1 when nothing had to be retried). */
  attempts: number;
  durationMs: number;
  /** Post-upload commands that ran successfully. */
  postUploadCommands: number;
}

/** At least one destination failed; `outcomes` has every destination, the good ones too. */
export class UploadError extends Error {
  constructor(readonly outcomes: UploadOutcome[]) {
    const failed = outcomes.filter((outcome) => !outcome.ok);
    super(
      `Upload to ${failed.length} of ${outcomes.length} destination${outcomes.length === 1 ? '' : 's'} failed:\n` +
        failed.map((outcome) => `  [${outcome.destination}] ${outcome.target}: ${outcome.error ?? 'failed'}`).join('\n'),
    );
    this.name = 'UploadError';
  }
}

/** Target-side folder for an interrupted transfer: never the final name, and the next upload resumes from it. */
export const PARTIAL_DIR = '.rsync-partial';
/** A stalled connection fails after this many seconds instead of hanging the build. */
export const RSYNC_TIMEOUT_SECONDS = 300;

/**
 * Options that make rsync write into the file under its final name while it
 * transfers, so a consumer could see half an image. (`--partial` and `-P` are
 * harmless: our `--partial-dir` wins. `--temp-dir` on another file system is
 * harmless too: with a partial dir, rsync copies into it and renames.)
 */
const UNSAFE_OPTIONS = ['--inplace', '--append', '--append-verify', '--write-devices'];

/**
 * Upload the finished image, then its checksum file, to every destination;
 * verify each copy; then run the destination's post-upload commands. A
 * failing destination does not stop the others: UploadError at the end
 * names all that failed.
 */
export async function uploadImage(ctx: BuildContext, files: { image: string; checksum: string }): Promise<UploadOutcome[]> {
  const { spec, reporter } = ctx;
  if (!spec.upload) {
    if (spec.uploads.length) {
      reporter.info(`Upload disabled: not uploading to ${spec.uploads.map((d) => d.name).join(', ')}.`);
    }
    return [];
  }
  const outcomes: UploadOutcome[] = [];
  for (const destination of spec.uploads) {
    outcomes.push(await uploadToDestination(ctx, destination, files));
  }
  if (outcomes.some((outcome) => !outcome.ok)) throw new UploadError(outcomes);
  return outcomes;
}

async function uploadToDestination(
  ctx: BuildContext,
  destination: UploadDestination,
  files: { image: string; checksum: string },
): Promise<UploadOutcome> {
  const { reporter } = ctx;
  const started = Date.now();
  const { uri: plainTarget, password } = splitRsyncCredentials(destination.target);
  const target = asFolder(plainTarget);
  const secrets = password === undefined ? [] : secretVariants(destination.target, password);
  const clean = (text: string): string => scrubSecrets(text, secrets);
  const shown = clean(redactUri(destination.target));
  const label = `[${destination.name}]`;
  const imageName = basename(files.image);
  let attempts = 0;
  let postUploadCommands = 0;
  const outcome = (error?: string): UploadOutcome => ({
    destination: destination.name,
    target: shown,
    ok: error === undefined,
    ...(error === undefined ? {} : { error }),
    attempts: Math.max(attempts, 1),
    durationMs: Date.now() - started,
    postUploadCommands,
  });
  const fail = (error: string): UploadOutcome => {
    const message = clean(error);
    reporter.warning(`${label} upload to ${shown} failed: ${message}`);
    return outcome(message);
  };

  const unsafe = destination.args.filter((arg) => UNSAFE_OPTIONS.includes(arg.split('=')[0]));
  if (unsafe.length) {
    return fail(
      `upload_args ${unsafe.join(' ')} would let rsync write into the file under its final name while it transfers, ` +
        `so a consumer could see half an image; remove ${unsafe.length === 1 ? 'it' : 'them'} from [${destination.name}] upload_args.`,
    );
  }

  const env = password === undefined ? process.env : { ...process.env, RSYNC_PASSWORD: password };
  const progress = throttled(5000, (message) => reporter.progress('upload', `${label} ${message}`));
  const baseOptions: HostRunOptions = {
    env,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  };
  const echo = (line: string): void => {
    if (PROGRESS_LINE.test(line)) progress(clean(line.trim()));
    else reporter.output(clean(line));
  };
  const ourFlags = [
    '--no-motd',
    '--times',
    `--partial-dir=${PARTIAL_DIR}`,
    `--timeout=${RSYNC_TIMEOUT_SECONDS}`,
    ...(ctx.spec.format === 'raw' ? ['--sparse'] : []),
  ];
  const runRsync = async (argv: string[], onLine: (line: string) => void = echo, onAttempt?: () => void): Promise<void> => {
    await withRetries(() => ctx.host.run(argv, { ...baseOptions, onLine }).then(() => undefined), {
      isTransient: isTransientRsyncFailure,
      describe: (error) => clean(describeRsyncFailure(error)),
      signal: ctx.signal,
      onAttempt: () => {
        attempts += 1;
        onAttempt?.();
      },
      onRetry: (reason, attempt, delayMs) =>
        reporter.warning(`${label} rsync failed (attempt ${attempt} of ${RETRY_ATTEMPTS}): ${reason}; retrying in ${formatDuration(delayMs)}`),
    });
  };

  reporter.info(`${label} uploading ${imageName} to ${shown}`);
  try {
    // The image first: whoever waits for the .sha256sum finds a whole image beside it.
    for (const file of [files.image, files.checksum]) {
      try {
        await runRsync(['rsync', ...destination.args, ...ourFlags, file, target]);
      } catch (error) {
        if (isAbort(error, ctx.signal)) throw error;
        return fail(`uploading ${basename(file)} failed: ${describeRsyncFailure(error)}`);
      }
    }

    const differing: string[] = [];
    try {
      const verifyArgs = [...withoutQuiet(destination.args), '--no-motd', '--checksum', '--dry-run', `--timeout=${RSYNC_TIMEOUT_SECONDS}`];
      await runRsync(
        ['rsync', ...verifyArgs, `--out-format=${VERIFY_PREFIX}%i %n`, files.image, files.checksum, target],
        (line) => {
          const item = parseVerifyLine(line);
          if (item === undefined) echo(line);
          else if (item.change !== '.') differing.push(item.name);
        },
        () => differing.splice(0),
      );
    } catch (error) {
      if (isAbort(error, ctx.signal)) throw error;
      return fail(`verifying the upload failed: ${describeRsyncFailure(error)}`);
    }
    if (differing.length) {
      return fail(`the copy on the target differs from the local file (${differing.join(', ')}): rsync --checksum would send it again`);
    }

    for (const argv of destination.postUploadCommands(imageName)) {
      if (argv.length === 0) continue;
      try {
        await ctx.host.run(argv, {
          ...(ctx.signal ? { signal: ctx.signal } : {}),
          onLine: (line) => reporter.output(clean(line)),
        });
      } catch (error) {
        if (isAbort(error, ctx.signal)) throw error;
        return fail(`post-upload command '${formatCommand(argv)}' failed: ${describeCommandFailure(error, argv[0])}`);
      }
      postUploadCommands += 1;
    }
  } catch (error) {
    if (error instanceof Error) error.message = clean(error.message);
    throw error;
  }

  const result = outcome();
  reporter.info(
    `${label} uploaded and verified ${imageName} and ${basename(files.checksum)} on ${shown} in ${formatDuration(result.durationMs)}` +
      (attempts > 1 ? ` (${attempts} rsync runs, retries included)` : ''),
  );
  return result;
}

/** What rsync prints with --progress: `  12,345,678  45%  11.2MB/s  0:00:03`. */
const PROGRESS_LINE = /^\s*[0-9][0-9,.]*[A-Za-z]?\s+[0-9]+%/;

const VERIFY_PREFIX = 'image-factory-verify:';

/** `image-factory-verify:<fcsT...... name` → the update type (`.` = nothing to send) and the name. */
function parseVerifyLine(line: string): { change: string; name: string } | undefined {
  if (!line.startsWith(VERIFY_PREFIX)) return undefined;
  const rest = line.slice(VERIFY_PREFIX.length);
  const space = rest.indexOf(' ');
  return { change: rest.charAt(0), name: space >= 0 ? rest.slice(space + 1) : rest };
}

/** `-q` silences --out-format, which the verification reads. */
function withoutQuiet(args: readonly string[]): string[] {
  return args
    .filter((arg) => arg !== '--quiet')
    .map((arg) => (/^-[A-Za-z]+$/.test(arg) ? arg.replace(/q/g, '') : arg))
    .filter((arg) => arg !== '-');
}

/**
 * Each file goes in its own rsync run, so the target has to name a folder:
 * with one source file, `host:/srv/images` would otherwise become a file
 * called `images`. (`host:` — the remote home — already is one.)
 */
function asFolder(target: string): string {
  return target.endsWith('/') || target.endsWith(':') ? target : `${target}/`;
}

// ---------------------------------------------------------------------------
// Shared with fetch.ts: rsync credentials, failure classification and retries.

/**
 * `rsync://user:secret@host/module/` → the URI without the password (rsync
 * reads that from RSYNC_PASSWORD) and the password. Other forms carry none.
 */
export function splitRsyncCredentials(uri: string): { uri: string; password?: string } {
  const match = /^(rsync:\/\/[^/@:]*):([^/@]*)@/i.exec(uri);
  if (!match) return { uri };
  let password = match[2];
  try {
    password = decodeURIComponent(password);
  } catch {
    // Not percent-encoded: take it as written.
  }
  return { uri: `${match[1]}@${uri.slice(match[0].length)}`, password };
}

/** The password as written in the URI and as decoded: either could surface in a message. */
export function secretVariants(uri: string, password: string): string[] {
  const raw = /^rsync:\/\/[^/@:]*:([^/@]*)@/i.exec(uri)?.[1];
  return [...new Set([password, raw ?? password])].filter((secret) => secret !== '');
}

export function scrubSecrets(text: string, secrets: readonly string[]): string {
  return secrets.reduce((result, secret) => result.split(secret).join('***'), text);
}

/** rsync's own last lines, minus the progress meter, for a message. */
export function describeRsyncFailure(error: unknown): string {
  return describeCommandFailure(error, 'rsync');
}

function describeCommandFailure(error: unknown, program: string): string {
  if (!(error instanceof CommandError)) return error instanceof Error ? error.message : String(error);
  const how = error.signal ? `was killed by ${error.signal}` : error.exitCode === null ? 'did not start' : `exited with code ${error.exitCode}`;
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

export const RETRY_ATTEMPTS = 4;
const RETRY_DELAY_ENV = 'IMAGE_FACTORY_RETRY_DELAY_MS';

/** Delay before retry `retry` (1, 2, 3): 1 s, 2 s, 4 s, or from IMAGE_FACTORY_RETRY_DELAY_MS as the base. */
export function retryDelayMs(retry: number): number {
  const configured = Number(process.env[RETRY_DELAY_ENV]);
  const base = Number.isFinite(configured) && configured >= 0 && process.env[RETRY_DELAY_ENV] !== '' ? configured : 1000;
  return base * 2 ** (retry - 1);
}

export interface RetryOptions {
  isTransient: (error: unknown) => boolean;
  describe: (error: unknown) => string;
  onRetry: (reason: string, attempt: number, delayMs: number) => void;
  onAttempt?: (attempt: number) => void;
  signal?: AbortSignal;
  attempts?: number;
}

/** Run `work` until it succeeds, fails for good, or has failed `attempts` times; back off between tries. */
export async function withRetries<T>(work: () => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = options.attempts ?? RETRY_ATTEMPTS;
  for (let attempt = 1; ; attempt += 1) {
    options.onAttempt?.(attempt);
    try {
      return await work();
    } catch (error) {
      if (isAbort(error, options.signal) || attempt >= attempts || !options.isTransient(error)) throw error;
      const delayMs = retryDelayMs(attempt);
      options.onRetry(options.describe(error), attempt, delayMs);
      try {
        await sleep(delayMs, undefined, options.signal ? { signal: options.signal } : {});
      } catch {
        throw new AbortedError('interrupted while waiting to retry');
      }
    }
  }
}

export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return error instanceof AbortedError || signal?.aborted === true;
}
