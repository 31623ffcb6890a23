import { basename } from 'node:path';
import type { UploadDestination } from '../config/image-spec.js';
import { formatDuration } from '../config/units.js';
import { formatCommand } from '../host/command-error.js';
import type { HostRunOptions } from '../host/host.js';
import { redactSecrets, redactUri, secretVariants } from '../net/credentials.js';
import { isAbort, RETRY_ATTEMPTS, withRetries } from '../net/retry.js';
import {
  describeCommandFailure,
  describeRsyncFailure,
  isRsyncProgressLine,
  isTransientRsyncFailure,
  rsyncArgv,
  rsyncEndpoint,
  type RsyncEndpoint,
} from '../net/rsync.js';
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
  const secrets = secretVariants(destination.target);
  const clean = (text: string): string => redactSecrets(text, secrets);
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

  let endpoint: RsyncEndpoint;
  try {
    endpoint = rsyncEndpoint(destination.target);
  } catch (error) {
    return fail(`[${destination.name}] upload_target: ${(error as Error).message}`);
  }
  const target = asFolder(endpoint.uri);

  const unsafe = destination.args.filter((arg) => UNSAFE_OPTIONS.includes(arg.split('=')[0]));
  if (unsafe.length) {
    return fail(
      `upload_args ${unsafe.join(' ')} would let rsync write into the file under its final name while it transfers, ` +
        `so a consumer could see half an image; remove ${unsafe.length === 1 ? 'it' : 'them'} from [${destination.name}] upload_args.`,
    );
  }

  const progress = throttled(5000, (message) => reporter.progress('upload', `${label} ${message}`));
  const baseOptions: HostRunOptions = {
    env: endpoint.env,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  };
  const echo = (line: string): void => {
    if (isRsyncProgressLine(line)) progress(clean(line.trim()));
    else reporter.output(clean(line));
  };
  const sendArgv = (file: string): string[] =>
    rsyncArgv({
      userArgs: destination.args,
      flags: ['--times', `--partial-dir=${PARTIAL_DIR}`],
      after: ctx.spec.format === 'raw' ? ['--sparse'] : [],
      operands: [file, target],
    });
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
        await runRsync(sendArgv(file));
      } catch (error) {
        if (isAbort(error, ctx.signal)) throw error;
        return fail(`uploading ${basename(file)} failed: ${describeRsyncFailure(error)}`);
      }
    }

    const differing: string[] = [];
    try {
      const verifyArgv = rsyncArgv({
        userArgs: withoutQuiet(destination.args),
        flags: ['--checksum', '--dry-run'],
        after: [`--out-format=${VERIFY_PREFIX}%i %n`],
        operands: [files.image, files.checksum, target],
      });
      await runRsync(
        verifyArgv,
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
