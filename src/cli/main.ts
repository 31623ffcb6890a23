import { Command, CommanderError, Option } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config/config-files.js';
import { applyOverrides, localDate, resolvedOptions, resolveImageSpec, type Overrides } from '../config/image-spec.js';
import { UsageError } from '../config/usage-error.js';
import { AbortedError } from '../host/exec.js';
import { HostSetupError, prepareHost } from '../host/host-setup.js';
import { SystemHost } from '../host/system-host.js';
import { BuildError, buildImage } from '../pipeline/build.js';
import { checkOutputs } from '../pipeline/staging.js';
import { describeResult } from './describe-result.js';
import { LogReporter } from '../pipeline/log-reporter.js';

export const EXIT_OK = 0;
export const EXIT_BUILD_FAILED = 1;
export const EXIT_USAGE = 2;

interface CliOptions {
  cacheDir?: string;
  format?: string;
  imageSize?: string;
  mac?: string;
  installerLogs?: boolean;
  logFile?: boolean;
  logFilename?: string;
  accelerator?: string;
  installTimeout?: string;
  zeroFreeSpace?: string;
  compress?: string;
  upload: boolean;
  bootTest?: boolean;
  outputDir?: string;
  printConfig?: boolean;
  dryRun?: boolean;
  installDependencies?: boolean;
}

const DESCRIPTION = `Build a golden Linux VM image with the distribution's own unattended installer.

Runs, for the IMAGE section of the configuration: fetch the netboot kernel and
initrd (cached) -> create a raw disk -> install with virt-install (preseed,
Kickstart or AutoYAST answer file) -> remove installer logs and zero free space
-> convert to qcow2 -> write <file>.sha256sum -> upload with rsync -> run the
post-build command. Files are named <IMAGE>-<YYYY-MM-DD>.<format>.

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

function buildProgram(): Command {
  return new Command('image-factory')
    .description(DESCRIPTION)
    .argument('[image]', 'image to build: a section of the configuration (default: $IMAGE)')
    .option('-c, --cache-dir <dir>', 'cache folder for installer files (default: /var/cache/image-factory as root, ~/.cache/image-factory otherwise)')
    .addOption(new Option('-f, --format <format>', 'image format (default: raw)').choices(['qcow2', 'raw']))
    .option('--image-size <size>', "size of the raw disk, e.g. 4G, '4 GiB', '5 GB' (default: 2G)")
    .option('--mac <mac>', 'MAC address of the installation machine')
    .option('--installer-logs', 'print installer logs and the console into the log output')
    .option('--no-installer-logs', 'do not print installer logs')
    .option('--log-file', 'also write the log to a file (<image>-<date>.log unless --log-filename)')
    .option('--no-log-file', 'do not write a log file')
    .option('--log-filename <file>', 'the log file to write (when logging to a file)')
    .addOption(new Option('--accelerator <name>', 'kvm, tcg (software, slow) or auto (default: kvm when usable)').choices(['auto', 'kvm', 'tcg']))
    .option('--install-timeout <duration>', "stop the installer after this long, e.g. 90m, 3h (default: 3h)")
    .addOption(
      new Option('--zero-free-space <how>', 'zero free space by discard (fast, falls back to zerofree), zerofree, or none (default: discard)').choices([
        'discard',
        'zerofree',
        'none',
      ]),
    )
    .addOption(new Option('--compress <how>', 'compress qcow2 clusters (default: none)').choices(['none', 'zlib', 'zstd']))
    .option('--no-upload', 'build without uploading to upload_destinations')
    .option('--boot-test', 'boot the finished image in a throw-away VM and fail unless it comes up (before any upload)')
    .option('--no-boot-test', 'do not boot-test the image')
    .option('-o, --output-dir <dir>', 'folder for the image, checksum and logs (default: the current folder)')
    .option('--install-dependencies', 'first install missing host tools (apt-get or dnf), start libvirt if nothing runs it, open a root-only /dev/kvm to the kvm group')
    .option('--print-config', 'print the resolved settings of the image as JSON and exit')
    .option('--dry-run', 'print every command the build would run, and run none')
    .addHelpText('after', EPILOG)
    .showHelpAfterError('(run image-factory --help for the options)')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text), writeOut: (text) => process.stdout.write(text) });
}

/** Run the command line; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const program = buildProgram();
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    throw error;
  }
  const options = program.opts<CliOptions>();
  const reporter = new LogReporter();
  const image = program.args[0] ?? process.env.IMAGE;
  if (!image) {
    process.stderr.write('image-factory: error: No image specified (give IMAGE as argument or in the IMAGE environment variable).\n');
    return EXIT_USAGE;
  }

  const overrides: Overrides = {
    cache_dir: options.cacheDir,
    mac: options.mac,
    format: options.format,
    'image-size': options.imageSize,
    'installer-logs': options.installerLogs,
    'log-file': options.logFile,
    'log-filename': options.logFilename,
    accelerator: options.accelerator,
    'install-timeout': options.installTimeout,
    'zero-free-space': options.zeroFreeSpace,
    compress: options.compress,
    'boot-test': options.bootTest,
  };

  let spec;
  try {
    const { config } = loadConfig();
    const knownImages = config.sections();
    const hadSection = applyOverrides(config, image, overrides);
    if (options.printConfig) {
      if (!hadSection) throw new UsageError(`No section '${image}' defined in the configuration. Images that exist: ${knownImages.join(', ') || '(none)'}.`);
      process.stdout.write(`${JSON.stringify(resolvedOptions(config, image), null, 2)}\n`);
      return EXIT_OK;
    }
    spec = resolveImageSpec(config, image, {
      outputDir: resolve(options.outputDir ?? '.'),
      date: localDate(),
      knownImages,
      hadSection,
      upload: options.upload,
    });
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`image-factory: error: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }

  if (spec.logFile && !options.dryRun) {
    try {
      reporter.openLogFile(spec.logFile);
    } catch (error) {
      process.stderr.write(`image-factory: error: cannot write the log file ${spec.logFile}: ${(error as Error).message}\n`);
      return EXIT_USAGE;
    }
  }

  const controller = new AbortController();
  let interruptedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interruptedBy) {
      reporter.warning(`${signal} received again: still cleaning up, please wait`);
      return;
    }
    interruptedBy = signal;
    reporter.warning(`${signal} received: stopping the build and cleaning up`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    if (options.installDependencies && !options.dryRun) {
      checkOutputs(spec);
      // Not interruptible: a package manager killed halfway can leave the host broken.
      await prepareHost(new SystemHost(reporter), reporter);
      if (controller.signal.aborted) throw new AbortedError('interrupted while preparing the host');
    }
    const result = await buildImage({ spec, reporter, dryRun: options.dryRun, signal: controller.signal });
    if (options.dryRun) reporter.info('Dry run: the commands above were not run, and nothing was created.');
    else reporter.info(`Build finished:\n${describeResult(result)}`);
    return EXIT_OK;
  } catch (error) {
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
      const cause = error.cause;
      if (cause instanceof AbortedError) reporter.error(`${error.step} step interrupted`);
      else reporter.error(error.message);
      if (error.cleanupFailures.length) reporter.error(`cleanup left something behind: ${error.cleanupFailures.join('; ')}`);
      return EXIT_BUILD_FAILED;
    }
    reporter.error(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return EXIT_BUILD_FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    reporter.close();
  }
}
