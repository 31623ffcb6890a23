import { Command, CommanderError, Option } from 'commander';
import { resolve } from 'node:path';
import { dollarProblem } from '../config/configparser.js';
import { printableOptions, specSecrets, unknownImage, type ImageSpec } from '../config/image-spec.js';
import {
  badValueMessage,
  camelCase,
  flagHelp,
  OPTIONS,
  valueProblem,
  type CliOptions,
  type OptionSpec,
  type Overrides,
} from '../config/options.js';
import { loadImageConfig, resolveSpec, type SpecRequest } from '../config/resolve-spec.js';
import { checkKeys } from '../config/unknown-keys.js';
import { UsageError } from '../config/usage-error.js';
import { AbortedError } from '../host/exec.js';
import { HostSetupError, prepareHost } from '../host/host-setup.js';
import { guestAccessRequirements } from '../host/host-checks.js';
import { SystemHost } from '../host/system-host.js';
import { BuildError, buildImage } from '../pipeline/build.js';
import { checkOutputs } from '../pipeline/staging.js';
import { describeResult } from './describe-result.js';
import { comparisonText } from '../supply-chain/metrics.js';
import { Interruption } from '../pipeline/interruption.js';
import { LogReporter } from '../pipeline/log-reporter.js';
import { printableLines } from '../common/printable-text.js';

export const EXIT_OK = 0;
export const EXIT_BUILD_FAILED = 1;
export const EXIT_USAGE = 2;

const DESCRIPTION = `Build a golden Linux VM image with the distribution's own unattended installer.

Runs, for the IMAGE section of the configuration: fetch the netboot kernel and
initrd (cached) -> create a raw disk -> install with virt-install (preseed,
Kickstart, AutoYaST or autoinstall answer file) -> remove installer logs and
zero free space -> convert to qcow2 -> write <file>.sha256sum -> boot the image
once (--boot-test) -> upload with rsync -> run the post-build command. Files
are named <IMAGE>-<YYYY-MM-DD>.<format>; nothing is ever overwritten, and a
failed build removes everything it created.

Configuration (INI, later files win): the shipped definitions, then
/etc/image-factory.conf, then ~/.config/image-factory.conf — or only the file
named by IMAGE_FACTORY_CONFIG.`;

const EPILOG = `
Examples:
  image-factory --print-config Debian-12-server   show the resolved settings
  image-factory --dry-run Debian-12-server        show every command, run none
  image-factory -f qcow2 Debian-12-server         build Debian-12-server-<date>.qcow2

Exit codes: 0 built, 1 a build step failed (everything it created was removed),
2 bad input (nothing was created), 130/143 interrupted (cleaned up).`;

/** Where the command writes: the process's stdout and stderr, or (in tests that run main() in-process) functions. */
export interface CommandOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const PROCESS_OUTPUT: CommandOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

function buildProgram(io: CommandOutput): Command {
  const program = new Command('image-factory')
    .description(DESCRIPTION)
    .argument('[image]', 'image to build: a section of the configuration (default: $IMAGE)');
  for (const entry of OPTIONS as readonly OptionSpec[]) {
    const cli = entry.cli;
    if (cli === undefined) continue;
    const flags = `${cli.short ? `-${cli.short}, ` : ''}--${cli.long}${cli.arg ? ` <${cli.arg}>` : ''}`;
    const option = new Option(flags, flagHelp(entry));
    // A repeatable flag: each use adds a line to the value, as a continuation line of the key would.
    if (cli.repeatable) option.argParser((value: string, before?: string) => (before ? `${before}\n${value}` : value));
    if (!cli.onlyNo) program.addOption(option);
    if (cli.noHelp !== undefined) program.addOption(new Option(`--no-${cli.long}`, cli.noHelp));
  }
  return program
    .addHelpText('after', EPILOG)
    .showHelpAfterError('(run image-factory --help for the options)')
    .exitOverride()
    .configureOutput({
      // Commander quotes the arguments it refuses.
      writeErr: (text) => io.err(printableLines(text)),
      writeOut: (text) => io.out(text),
    });
}

/**
 * The options that go into the image's section, checked as the table says;
 * a bad value is worded as at every door, naming the flag.
 */
function cliOverrides(options: CliOptions): Overrides {
  const overrides: Record<string, string | boolean | undefined> = {};
  for (const entry of OPTIONS as readonly OptionSpec[]) {
    if (entry.cli === undefined || entry.key === undefined) continue;
    const value = (options as Record<string, string | boolean | undefined>)[camelCase(entry.cli.long)];
    if (typeof value === 'string') {
      const dollar = dollarProblem(value);
      const problem = dollar === undefined ? valueProblem(entry, value) : `'${value}' has ${dollar}`;
      if (problem !== undefined) throw new UsageError(badValueMessage(entry, { flag: true }, problem));
    }
    overrides[entry.key] = value;
  }
  return overrides as Overrides;
}

/** Run the command line; returns the exit code. */
export async function main(
  argv: string[] = process.argv.slice(2),
  io: CommandOutput = PROCESS_OUTPUT,
): Promise<number> {
  const parsed = parseArguments(argv, io);
  if (typeof parsed === 'number') return parsed;
  const { options, image } = parsed;
  const warnings: string[] = [];
  const spec = resolveCliSpec(options, image, io, warnings);
  if (typeof spec === 'number') return spec;
  // A dry run's lines say so: what it reports was planned, not seen.
  const reporter = new LogReporter(options.dryRun ? 'image-factory (dry run)' : 'image-factory', io.err);
  // The build's own messages already redact; this catches a password that a program prints.
  reporter.mask(specSecrets(spec));
  // The log file is created once the checks passed (a refused build creates nothing); it gets the lines said before.
  if (spec.logFile && !options.dryRun) reporter.holdLines();
  for (const warning of warnings) reporter.warning(warning);
  const interruption = new Interruption(reporter);
  try {
    await build(spec, options, reporter, interruption.signal);
    return EXIT_OK;
  } catch (error) {
    return exitCodeOf(error, reporter, interruption.by);
  } finally {
    interruption.dispose();
    reporter.close();
  }
}

/** The options and the image, or the exit code when there is nothing to build (--help, a bad flag, no image). */
function parseArguments(argv: string[], io: CommandOutput): { options: CliOptions; image: string } | number {
  const program = buildProgram(io);
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    throw error;
  }
  const image = program.args[0] ?? process.env.IMAGE;
  if (!image) {
    say(io, 'error', 'No image specified (give IMAGE as argument or in the IMAGE environment variable).');
    return EXIT_USAGE;
  }
  return { options: program.opts<CliOptions>(), image };
}

/**
 * The image's spec from the configuration and the flags, its warnings added
 * to `warnings`; or, after --print-config or bad input, the exit code.
 */
function resolveCliSpec(options: CliOptions, image: string, io: CommandOutput, warnings: string[]): ImageSpec | number {
  try {
    const request: SpecRequest = {
      image,
      overrides: cliOverrides(options),
      outputDir: resolve(options.outputDir ?? '.'),
      upload: options.upload !== false,
      warn: (message) => warnings.push(message),
    };
    if (!options.printConfig) return resolveSpec(request);
    const { config, knownImages, hadSection } = loadImageConfig(request);
    if (!hadSection) throw unknownImage(image, knownImages);
    checkKeys(config, image, (message) => say(io, 'warning', message));
    io.out(`${printableJson(printableOptions(config, image, options.showSecrets === true))}\n`);
    return EXIT_OK;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    say(io, 'error', error.message);
    return EXIT_USAGE;
  }
}

/** A message before the build's log starts: `image-factory: <level>: ` before each of its lines, made printable. */
function say(io: CommandOutput, level: 'warning' | 'error', message: string): void {
  const lines = printableLines(message).split('\n');
  io.err(lines.map((line) => `image-factory: ${level}: ${line}\n`).join(''));
}

/**
 * JSON, indented, with DEL, the C1 controls, U+2028 and U+2029 escaped too: JSON.stringify escapes
 * only the C0 controls, and a terminal obeys some C1 ones and a reader may end a line at U+2028.
 */
function printableJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /[\x7f-\x9f\u2028\u2029]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

async function build(spec: ImageSpec, options: CliOptions, reporter: LogReporter, signal: AbortSignal): Promise<void> {
  if (options.installDependencies && !options.dryRun) {
    checkOutputs(spec);
    // Not interruptible: a package manager killed halfway can leave the host broken.
    await prepareHost(new SystemHost(reporter), reporter, guestAccessRequirements(spec));
    if (signal.aborted) throw new AbortedError('interrupted while preparing the host');
  }
  const logFile = options.dryRun ? undefined : spec.logFile;
  const onChecked = logFile ? () => openLogFile(reporter, logFile) : undefined;
  const result = await buildImage({ spec, reporter, dryRun: options.dryRun, signal, onChecked });
  if (options.dryRun) reporter.info('Dry run: the commands above were not run, and nothing was created.');
  else if (!result.changed) reporter.info('Build finished: unchanged, nothing published or uploaded (skip-unchanged).');
  else reporter.info(`Build finished:\n${describeResult(result)}`);
  if (!options.dryRun && result.history.length)
    reporter.info(`Metrics ${comparisonText(result.metrics, result.history.at(-1))}`);
}

/** Create the log file; a UsageError (exit 2, nothing created) when it cannot be. */
function openLogFile(reporter: LogReporter, path: string): void {
  try {
    reporter.openLogFile(path);
  } catch (error) {
    throw new UsageError(`cannot write the log file ${path}: ${(error as Error).message}`);
  }
}

/** Says what went wrong, and returns the exit code of the manual: 1 build failed, 2 bad input, 130/143 interrupted. */
function exitCodeOf(error: unknown, reporter: LogReporter, interruptedBy: NodeJS.Signals | undefined): number {
  if (interruptedBy) {
    reporter.error(`interrupted by ${interruptedBy}; everything the build created was removed`);
    return interruptedBy === 'SIGINT' ? 130 : 143;
  }
  if (error instanceof UsageError) {
    reporter.error(error.message);
    return EXIT_USAGE;
  }
  if (error instanceof HostSetupError) {
    reporter.error(`preparing the host failed: ${error.message}`);
    return EXIT_BUILD_FAILED;
  }
  if (error instanceof BuildError) {
    if (error.cause instanceof AbortedError) reporter.error(`${error.step} step interrupted`);
    else reporter.error(error.message);
    if (error.cleanupFailures.length)
      reporter.error(`cleanup left something behind: ${error.cleanupFailures.join('; ')}`);
    return EXIT_BUILD_FAILED;
  }
  reporter.error(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return EXIT_BUILD_FAILED;
}
