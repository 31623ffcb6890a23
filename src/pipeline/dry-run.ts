import type { ImageSpec } from '../config/image-spec.js';
import type { RunResult } from '../host/exec.js';
import { RecordingHost, type HostCall } from '../host/recording-host.js';
import type { Reporter } from '../common/reporter.js';
import { scriptOf, scriptSucceeded } from '../guest/appliance-shell.js';

/** The installer's usual layout for the dry run's plan: one partition from 1 MiB to the end. */
const FIRST_BYTE = 1 << 20;

/** lstatns's answer for a folder and for a regular file. */
const STAT_DIR = 'st_ino: 2\nst_mode: 16877\n';
const STAT_FILE = 'st_ino: 12\nst_mode: 33188\n';

/**
 * The appliance's shell in the plan (appliance-shell.ts: a status and size line, no error output, the output
 * base64-encoded): the check of free space gets dumpe2fs with nothing free listed (a plan has no blocks to
 * read); a survey of folders and a removal print nothing.
 */
function scriptAnswer(command: string): string {
  const script = scriptOf(command) ?? '';
  return scriptSucceeded(
    /^run dumpe2fs /m.test(script) ? '== dumpe2fs\nBlock size: 4096\nGroup 0:\n  Free blocks: \n' : '',
  );
}

/**
 * What the appliance answers in the plan: one ext4 partition holding the
 * installed system (an /etc with an fstab); every other path is missing.
 * Its free space lists no block: the check after the scrub has nothing to read.
 */
function applianceAnswer(spec: ImageSpec, argv: readonly string[]): Partial<RunResult> {
  const [command, ...args] = argv.slice(argv.indexOf('--') + 1);
  const partitionSize = spec.imageSize - FIRST_BYTE;
  const answers: Record<string, string> = {
    'list-devices': '/dev/sda',
    'blockdev-getsize64': String(args[0] === '/dev/sda' ? spec.imageSize : partitionSize),
    'part-get-parttype': 'msdos',
    'list-partitions': '/dev/sda1',
    blkid: `TYPE: ext4\nPART_ENTRY_TYPE: 0x83\nPART_ENTRY_NUMBER: 1\nPART_ENTRY_SIZE: ${partitionSize / 512}\nPART_ENTRY_OFFSET: ${FIRST_BYTE / 512}`,
    debug: scriptAnswer(args[args.length - 1] ?? ''),
    lstatns: args[0] === '/etc' ? STAT_DIR : args[0] === '/etc/fstab' ? STAT_FILE : '',
  };
  return { stdout: `${answers[command.replace(/^-/, '')] ?? ''}\n` };
}

/**
 * The host `--dry-run` builds on: it prints every command and runs none,
 * except the probe that decides how virt-install is called. Its plan answers
 * as a typical build would see it: the installer wrote one ext4 partition,
 * and the raw file shrank once its free space was discarded.
 */
export function dryRunHost(reporter: Reporter, spec: ImageSpec): RecordingHost {
  const sectors = Math.floor(spec.imageSize / 512);
  const trimmed = (calls: readonly HostCall[]): boolean =>
    calls.some((call) => call.kind === 'run' && call.argv.includes('-fstrim'));
  return new RecordingHost(reporter, {
    answers: [
      { match: /^virt-install --version$/, runForReal: true },
      { match: /^getfacl /, runForReal: true },
      {
        match: (argv) => argv[0] === 'guestfish' && argv[1]?.startsWith('--remote=') && argv[3] !== 'exit',
        respond: (argv) => applianceAnswer(spec, argv),
      },
    ],
    readFile: () => Buffer.alloc(0),
    stat: (_path, calls) => ({ size: spec.imageSize, blocks: trimmed(calls) ? 0 : sectors, uid: 0, gid: 0 }),
  });
}
