import * as core from '@actions/core';
import { specSecrets, type ImageSpec } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import { LogReporter } from '../pipeline/log-reporter.js';
import { AbortedError } from '../host/exec.js';
import { SystemHost } from '../host/system-host.js';
import { BuildError, buildImage, type BuildResult } from '../pipeline/build.js';
import { printableLines } from '../common/printable-text.js';
import { checkOutputs } from '../pipeline/staging.js';
import { firstImage, pathOf } from '../pipeline/artifacts.js';
import { STEP_TITLES } from '../common/reporter.js';
import { ActionReporter } from './action-reporter.js';
import { outputsOf } from './outputs.js';
import { HostSetupError, prepareHost } from '../host/host-setup.js';
import { guestAccessRequirements } from '../host/host-checks.js';
import { readInputs } from './inputs.js';
import { Input } from './constants.js';
import { inputSecrets } from './secrets.js';
import { redactSecrets } from '../common/credentials.js';
import { InstallerCache } from './installer-cache.js';
import { ManifestCache } from './manifest-cache.js';
import { savePendingResources } from './pending-resources.js';
import { resolveActionSpec } from './resolve-spec.js';
import { writeSummary } from './summary.js';
import { Interruption } from '../pipeline/interruption.js';

/** The step's outputs, from the build's result (exported for the tests). */
export function setOutputs(result: BuildResult): void {
  for (const output of outputsOf(result)) {
    const value = output.value(result);
    if (value !== undefined) core.setOutput(output.name, value);
  }
}

/** The failure in words for the annotation: which step, why, and what cleanup could not remove. */
function describeFailure(error: unknown, interruptedBy: NodeJS.Signals | undefined): string {
  if (interruptedBy) {
    const step = error instanceof BuildError ? ` during the ${error.step} step` : '';
    const leftBehind = error instanceof BuildError && error.cleanupFailures.length ? error.cleanupFailures : [];
    return leftBehind.length
      ? `Interrupted by ${interruptedBy}${step}. Cleanup left something behind: ${leftBehind.join('; ')}; the post step tries again.`
      : `Interrupted by ${interruptedBy}${step}; everything the build had created was removed.`;
  }
  if (error instanceof BuildError) {
    const cause =
      error.cause instanceof AbortedError
        ? 'interrupted'
        : error.cause instanceof Error
          ? error.cause.message
          : String(error.cause);
    let message = `The ${error.step} step (${STEP_TITLES[error.step]}) failed: ${cause}`;
    if (error.cleanupFailures.length) message += `\nCleanup left something behind: ${error.cleanupFailures.join('; ')}`;
    return message;
  }
  // Bad input and an unready runner are explained in their messages; anything else is a bug: show where.
  if (error instanceof UsageError || error instanceof HostSetupError) return error.message;
  if (error instanceof Error) return error.stack ?? error.message;
  return String(error);
}

async function buildFromInputs(): Promise<void> {
  // Bad input fails here, before anything is installed, downloaded or created.
  const inputs = readInputs();
  // The runner hands inputs over in the environment, which every command the build runs would inherit.
  for (const name of [Input.SigningKey, Input.SigningPassphrase]) delete process.env[`INPUT_${name.toUpperCase()}`];
  // Passwords in any URI of the inputs, before anything is said (an error may quote a raw value); then those
  // of the installer's and the uploads' URIs as resolved. The runner masks them in the whole log.
  const early = inputSecrets(inputs);
  for (const secret of early) core.setSecret(secret);
  const reporter = new ActionReporter();
  reporter.mask(early);
  const spec: ImageSpec = resolveActionSpec(inputs, (message) => reporter.warning(message));
  const secrets = [...new Set([...early, ...specSecrets(spec)])];
  for (const secret of secrets) core.setSecret(secret);
  reporter.mask(secrets);
  checkOutputs(spec);
  const logFile = spec.logFile ? heldLogFile(secrets) : undefined;
  if (logFile) reporter.mirrorInto(logFile);
  const interruption = new Interruption(reporter, 'still cleaning up; the post step finishes whatever is left.');
  try {
    if (inputs.installDependencies) {
      // Not interruptible: a package manager killed halfway can leave the runner broken.
      const host = new SystemHost(reporter);
      await reporter.group('Prepare the runner', () => prepareHost(host, reporter, guestAccessRequirements(spec)));
      if (interruption.signal.aborted) throw new AbortedError('interrupted while preparing the runner');
    }
    await buildWithCache(spec, reporter, interruption.signal, () => openLogFile(logFile, spec.logFile));
  } catch (error) {
    reporter.closeGroup();
    // An image that was published before a later step failed (upload, post-build) is kept: say where it is.
    if (error instanceof BuildError && error.result) setOutputs(error.result);
    // The summary is a file the runner does not read through its masks: redact it here.
    const message = redactSecrets(describeFailure(error, interruption.by), secrets);
    const step = error instanceof BuildError ? error.step : undefined;
    await writeSummary({ image: spec.name, steps: reporter.steps, failure: { step, message } });
    throw new ActionFailure(message, interruption.by);
  } finally {
    reporter.closeGroup();
    interruption.dispose();
    logFile?.close();
  }
}

/**
 * The log file the configuration asks for, with the passwords masked: its
 * lines are held until the build's checks passed, then the file is created.
 */
function heldLogFile(secrets: string[]): LogReporter {
  const logFile = new LogReporter('image-factory', () => undefined);
  logFile.mask(secrets);
  logFile.holdLines();
  return logFile;
}

/** Create the held log file; a UsageError when it cannot be. */
function openLogFile(logFile: LogReporter | undefined, path: string | undefined): void {
  if (!logFile || !path) return;
  try {
    logFile.openLogFile(path);
  } catch (error) {
    throw new UsageError(`Cannot write the log file ${path}: ${(error as Error).message}`);
  }
}

/** The build, with the installer files restored from the Actions cache before and saved after. */
async function buildWithCache(
  spec: ImageSpec,
  reporter: ActionReporter,
  signal: AbortSignal,
  onChecked: () => void,
): Promise<void> {
  const installerCache = new InstallerCache(spec, reporter);
  // restore() says why when the cache takes no part; that one line needs no group.
  if (installerCache.active) await reporter.group('Restore the installer cache', () => installerCache.restore());
  else await installerCache.restore();
  const manifestCache = new ManifestCache(spec, reporter);
  const compared = manifestCache.active
    ? await reporter.group('Restore the last manifest', () => manifestCache.restore())
    : spec;
  const result = await buildImage({
    spec: compared,
    reporter,
    signal,
    onResources: savePendingResources,
    onChecked,
  });
  setOutputs(result);
  if (!result.cacheHit && installerCache.active)
    await reporter.group('Save the installer cache', () => installerCache.save(result.installer));
  const manifest = pathOf(result.artifacts, 'manifest') as string;
  // An unchanged build published no manifest: the kept one is still the image's last.
  const history = [...result.history, result.metrics];
  if (manifestCache.available && result.changed)
    await reporter.group('Save the manifest', () => manifestCache.save(manifest, history));
  const image = firstImage(result.artifacts);
  if (result.changed) reporter.info(`Built ${image.final} (sha256 ${image.sha256}).`);
  const cache = {
    restored: installerCache.restoredKey,
    saved: installerCache.savedKey,
    manifestRestored: manifestCache.restoredKey,
    manifestSaved: manifestCache.savedKey,
  };
  await writeSummary({ image: spec.name, steps: reporter.steps, result, cache });
}

/** A failure already put in words for the annotation. */
class ActionFailure extends Error {
  constructor(
    message: string,
    readonly interruptedBy?: NodeJS.Signals,
  ) {
    super(message);
    this.name = 'ActionFailure';
  }
}

/** The main step: build the image the inputs describe and publish its outputs. */
export async function run(): Promise<void> {
  try {
    await buildFromInputs();
  } catch (error) {
    // The failure quotes what a command or the guest printed: shown as every other message is (printable-text.ts).
    core.setFailed(printableLines(error instanceof ActionFailure ? error.message : describeFailure(error, undefined)));
    // Nothing is left to wait for after an interruption.
    if (error instanceof ActionFailure && error.interruptedBy) process.exit();
  }
}
