import { basename } from 'node:path';
import { UNSAFE_UPLOAD_ARGS, type UploadDestination } from '../config/image-spec.js';
import { formatDuration } from '../common/units.js';
import { formatCommand } from '../host/command-error.js';
import type { HostRunOptions } from '../host/host.js';
import { redactSecrets, redactUri, secretVariants } from '../common/credentials.js';
import { describeCauses, isAbort, rsyncWithRetries } from '../net/retry.js';
import {
  describeCommandFailure,
  describeRsyncFailure,
  isRsyncProgressLine,
  rsyncArgv,
  rsyncEndpoint,
  type RsyncEndpoint,
} from '../net/rsync.js';
import type { BuildContext } from '../context/build-context.js';
import { throttled } from '../common/reporter.js';
import { firstImage, uploadOrder, type Artifact } from './artifacts.js';
import { OciPush } from './upload-oci.js';
import { GlanceError } from '../net/glance.js';
import { GlanceUploadError, uploadToGlance, type GlanceImageFile } from './upload-glance.js';

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
  /** What the upload made, for the outputs: the pushed references (`registry/repo:tag@sha256:…`), a Glance image ID. */
  references?: string[];
}

/** At least one destination failed: the build's error, naming every destination that failed. */
export class UploadError extends Error {
  constructor(outcomes: readonly UploadOutcome[]) {
    const failed = outcomes.filter((outcome) => !outcome.ok);
    super(
      `Upload to ${failed.length} of ${outcomes.length} destination${outcomes.length === 1 ? '' : 's'} failed:\n` +
        failed
          .map((outcome) => `  [${outcome.destination}] ${outcome.target}: ${outcome.error ?? 'failed'}`)
          .join('\n'),
    );
    this.name = 'UploadError';
  }
}

/** The error for outcomes where a destination failed; undefined when every one succeeded. */
export function uploadFailure(outcomes: readonly UploadOutcome[]): UploadError | undefined {
  return outcomes.some((outcome) => !outcome.ok) ? new UploadError(outcomes) : undefined;
}

/** Target-side folder for an interrupted transfer: never the final name, and the next upload resumes from it. */
export const PARTIAL_DIR = '.rsync-partial';

/** Each kind of destination's view of the build's published files, all taken from the artifact table. */
interface UploadFiles {
  /** The first image (named to post-upload commands). */
  image: string;
  /** What rsync sends: the image first, the checksum list last (uploadOrder in artifacts.ts). */
  files: readonly string[];
  /** What a registry push makes its manifests from: the files by role, format and checksum. */
  artifacts: readonly Artifact[];
  /** What an image service (Glance) gets: the first image, its format, SHA-256 and the system's os-release. */
  imageFile: GlanceImageFile;
}

function uploadViews(artifacts: readonly Artifact[], osRelease?: Record<string, string>): UploadFiles {
  const image = firstImage(artifacts);
  return {
    image: image.final,
    files: uploadOrder(artifacts).map((file) => file.final),
    artifacts,
    imageFile: { path: image.final, format: image.format, osRelease, sha256: image.sha256 },
  };
}

/** `a`, `a and b`, `a, b and c`. */
function listed(names: string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/**
 * Upload the finished image, then its reports and checksum files, to every destination;
 * verify each copy; then run the destination's post-upload commands. A
 * failing destination does not stop the others: every destination's outcome
 * is returned, the failed ones too (uploadFailure says which failed).
 * `osRelease` (the installed system's) gives Glance its os_distro and os_version.
 */
export async function uploadImage(
  ctx: BuildContext,
  artifacts: readonly Artifact[],
  osRelease?: Record<string, string>,
): Promise<UploadOutcome[]> {
  const { spec, reporter } = ctx;
  if (!spec.upload) {
    if (spec.uploads.length) {
      reporter.info(`Upload disabled: not uploading to ${spec.uploads.map((d) => d.name).join(', ')}.`);
    }
    return [];
  }
  const files = uploadViews(artifacts, osRelease);
  const outcomes: UploadOutcome[] = [];
  for (const destination of spec.uploads) {
    outcomes.push(await uploadToDestination(ctx, destination, files));
  }
  return outcomes;
}

function uploadToDestination(
  ctx: BuildContext,
  destination: UploadDestination,
  files: UploadFiles,
): Promise<UploadOutcome> {
  return new DestinationUpload(ctx, destination, files).run();
}

/** Why one destination failed, in words (already clean of secrets when it is reported). */
class DestinationFailure extends Error {}

/** The upload to one destination: send, verify, post-upload commands; a failure is its outcome, not an exception. */
class DestinationUpload {
  private readonly started = Date.now();
  /** Every form of the target's password; a Glance upload adds its Keystone secrets and token. */
  private readonly secrets: string[];
  private readonly shown: string;
  private readonly label: string;
  private readonly imageName: string;
  private readonly progress: (message: string) => void;
  private attempts = 0;
  private postUploadCommands = 0;
  private references: string[] = [];

  constructor(
    private readonly ctx: BuildContext,
    private readonly destination: UploadDestination,
    private readonly files: UploadFiles,
  ) {
    this.secrets = [
      ...secretVariants(destination.target),
      ...(destination.oci?.password ? [destination.oci.password] : []),
    ];
    this.shown = this.clean(redactUri(destination.target));
    this.label = `[${destination.name}]`;
    this.imageName = basename(files.image);
    this.progress = throttled(5000, (message) => ctx.reporter.progress('upload', `${this.label} ${message}`));
  }

  async run(): Promise<UploadOutcome> {
    try {
      if (this.destination.oci) {
        await this.push();
      } else {
        this.ctx.reporter.info(`${this.label} uploading ${this.imageName} to ${this.shown}`);
        if (this.destination.type === 'glance') await this.toGlance();
        else await this.toRsync();
      }
      await this.runPostUploadCommands();
    } catch (error) {
      if (error instanceof DestinationFailure) return this.fail(error.message);
      if (error instanceof Error) error.message = this.clean(error.message);
      throw error;
    }
    const result = this.outcome();
    const sent =
      this.destination.type === 'glance'
        ? `${this.imageName} as image ${this.references[0]}`
        : listed(this.files.files.map((file) => basename(file)));
    const runs = this.destination.type === 'rsync' ? 'rsync runs' : 'attempts';
    this.ctx.reporter.info(
      `${this.label} uploaded and verified ${sent} on ${this.shown} in ${formatDuration(result.durationMs)}` +
        (this.attempts > 1 ? ` (${this.attempts} ${runs}, retries included)` : ''),
    );
    return result;
  }

  private async toRsync(): Promise<void> {
    const endpoint = this.endpoint();
    // The image first: whoever waits for the .sha256sum (or SHA256SUMS) finds a whole image beside it.
    for (const file of this.files.files) await this.send(endpoint, file);
    await this.verify(endpoint);
  }

  /** The first image to an image service: one image record, its data checked by the service's own digests. */
  private async toGlance(): Promise<void> {
    try {
      const id = await uploadToGlance(this.ctx, this.destination, this.files.imageFile, this.secrets, () => {
        this.attempts += 1;
      });
      this.references = [id];
    } catch (error) {
      if (isAbort(error, this.ctx.signal)) throw error;
      if (error instanceof GlanceUploadError || error instanceof GlanceError)
        throw new DestinationFailure(error.message);
      throw error;
    }
  }

  private clean(text: string): string {
    return redactSecrets(text, this.secrets);
  }

  private outcome(error?: string): UploadOutcome {
    return {
      destination: this.destination.name,
      target: this.shown,
      ok: error === undefined,
      ...(error === undefined ? {} : { error }),
      attempts: Math.max(this.attempts, 1),
      durationMs: Date.now() - this.started,
      postUploadCommands: this.postUploadCommands,
      ...(this.references.length ? { references: this.references } : {}),
    };
  }

  /** To an OCI registry: the images as artifacts (and a containerDisk), the reports as their referrers. */
  private async push(): Promise<void> {
    const oci = this.destination.oci!;
    const push = new OciPush(this.ctx, oci, this.files.artifacts, this.label, this.secrets);
    if (!this.ctx.host.live) {
      this.ctx.reporter.info(`${this.label} would push ${this.imageName} to ${push.target}`);
      return;
    }
    this.ctx.reporter.info(`${this.label} pushing ${this.imageName} to ${push.target}`);
    try {
      const result = await push.run();
      this.attempts = result.attempts;
      this.references = result.references;
      this.ctx.reporter.info(
        `${this.label} pushed ${result.references.join(', ')} (${result.blobsSent} blobs sent, ` +
          `${result.blobsPresent} already there)`,
      );
    } catch (error) {
      if (isAbort(error, this.ctx.signal)) throw error;
      throw new DestinationFailure(`pushing to ${push.target} failed: ${describeCauses(error)}`);
    }
  }

  private fail(error: string): UploadOutcome {
    const message = this.clean(error);
    this.ctx.reporter.warning(`${this.label} upload to ${this.shown} failed: ${message}`);
    return this.outcome(message);
  }

  /**
   * The target as rsync takes it, with its password in the environment. The
   * configuration refuses unsafe upload_args before the build; a spec made
   * elsewhere (a test, an old saved state) is refused here too.
   */
  private endpoint(): RsyncEndpoint {
    const { name, args, target } = this.destination;
    let endpoint: RsyncEndpoint;
    try {
      endpoint = rsyncEndpoint(target);
    } catch (error) {
      throw new DestinationFailure(`[${name}] upload_target: ${(error as Error).message}`);
    }
    const unsafe = args.filter((arg) => UNSAFE_UPLOAD_ARGS.includes(arg.split('=')[0]));
    if (unsafe.length) {
      throw new DestinationFailure(
        `upload_args ${unsafe.join(' ')} would let rsync write into the file under its final name while it transfers, ` +
          `so a consumer could see half an image; remove ${unsafe.length === 1 ? 'it' : 'them'} from [${name}] upload_args.`,
      );
    }
    return { ...endpoint, uri: asFolder(endpoint.uri) };
  }

  private echo(line: string): void {
    if (isRsyncProgressLine(line)) this.progress(this.clean(line.trim()));
    else this.ctx.reporter.output(this.clean(line));
  }

  private async rsync(
    endpoint: RsyncEndpoint,
    argv: string[],
    onLine = (line: string) => this.echo(line),
    onAttempt?: () => void,
  ): Promise<void> {
    const { ctx } = this;
    const options: HostRunOptions = { env: endpoint.env, onLine, ...(ctx.signal ? { signal: ctx.signal } : {}) };
    await rsyncWithRetries(() => ctx.host.run(argv, options), {
      what: `${this.label} rsync`,
      secrets: this.secrets,
      warn: (message) => ctx.reporter.warning(message),
      signal: ctx.signal,
      onAttempt: () => {
        this.attempts += 1;
        onAttempt?.();
      },
    });
  }

  /** Through rsync's temp file and --partial-dir: nothing half-sent ever stands under the final name. */
  private async send(endpoint: RsyncEndpoint, file: string): Promise<void> {
    const argv = rsyncArgv({
      userArgs: this.destination.args,
      flags: ['--times', `--partial-dir=${PARTIAL_DIR}`],
      // Raw and fixed VHD files are mostly holes: sent and written sparse.
      after: /\.(raw|vhd)$/.test(file) ? ['--sparse'] : [],
      operands: [file, endpoint.uri],
    });
    try {
      await this.rsync(endpoint, argv);
    } catch (error) {
      if (isAbort(error, this.ctx.signal)) throw error;
      throw new DestinationFailure(`uploading ${basename(file)} failed: ${describeRsyncFailure(error)}`);
    }
  }

  /** `rsync --checksum --dry-run` must find nothing to send: the copies are the files, byte for byte. */
  private async verify(endpoint: RsyncEndpoint): Promise<void> {
    const differing: string[] = [];
    const argv = rsyncArgv({
      userArgs: withoutQuiet(this.destination.args),
      flags: ['--checksum', '--dry-run'],
      after: [`--out-format=${VERIFY_PREFIX}%i %n`],
      operands: [...this.files.files, endpoint.uri],
    });
    const onLine = (line: string): void => {
      const item = parseVerifyLine(line);
      if (item === undefined) this.echo(line);
      else if (item.change !== '.') differing.push(item.name);
    };
    try {
      await this.rsync(endpoint, argv, onLine, () => differing.splice(0));
    } catch (error) {
      if (isAbort(error, this.ctx.signal)) throw error;
      throw new DestinationFailure(`verifying the upload failed: ${describeRsyncFailure(error)}`);
    }
    if (differing.length) {
      throw new DestinationFailure(
        `the copy on the target differs from the local file (${differing.join(', ')}): rsync --checksum would send it again`,
      );
    }
  }

  private async runPostUploadCommands(): Promise<void> {
    const { ctx } = this;
    const reference = this.references[0] ?? `${asFolder(this.shown)}${this.imageName}`;
    for (const argv of this.destination.postUploadCommands(this.imageName, reference)) {
      if (argv.length === 0) continue;
      try {
        await ctx.host.run(argv, {
          ...(ctx.signal ? { signal: ctx.signal } : {}),
          onLine: (line) => ctx.reporter.output(this.clean(line)),
        });
      } catch (error) {
        if (isAbort(error, ctx.signal)) throw error;
        throw new DestinationFailure(
          `post-upload command '${formatCommand(argv)}' failed: ${describeCommandFailure(error, argv[0])}`,
        );
      }
      this.postUploadCommands += 1;
    }
  }
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
