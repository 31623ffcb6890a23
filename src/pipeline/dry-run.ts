import type { ImageSpec } from '../config/image-spec.js';
import type { RunResult } from '../host/exec.js';
import { RecordingHost, type HostCall } from '../host/recording-host.js';
import type { Reporter } from './reporter.js';

/** The installer's usual layout for the dry run's plan: one partition from 1 MiB to the end. */
const FIRST_BYTE = 1 << 20;

/** What the appliance answers in the plan: one ext4 partition holding the installed system. */
function applianceAnswer(spec: ImageSpec, argv: readonly string[]): Partial<RunResult> {
  const [command, ...args] = argv.slice(argv.indexOf('--') + 1);
  const answers: Record<string, string> = {
    'list-devices': '/dev/sda',
    'blockdev-getsize64': String(args[0] === '/dev/sda' ? spec.imageSize : spec.imageSize - FIRST_BYTE),
    'part-get-parttype': 'msdos',
    'list-partitions': '/dev/sda1',
    'part-to-partnum': '1',
    'part-get-mbr-id': '0x83',
    'list-filesystems': '/dev/sda1: ext4',
    'inspect-os': '/dev/sda1',
    'inspect-get-mountpoints': '/: /dev/sda1',
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
