import type { ImageSpec } from '../config/image-spec.js';
import { RecordingHost, type HostCall } from '../host/recording-host.js';
import type { Reporter } from './reporter.js';

/** The installer's usual layout for the dry run's plan: one partition from sector 2048 to the end. */
const FIRST_SECTOR = 2048;

/**
 * The host `--dry-run` builds on: it prints every command and runs none,
 * except the probe that decides how virt-install is called. Its plan answers
 * as a typical build would see it: the installer wrote one ext4 partition,
 * and the raw file shrank once its free space was discarded.
 */
export function dryRunHost(reporter: Reporter, spec: ImageSpec): RecordingHost {
  const sectors = Math.floor(spec.imageSize / 512);
  const table = {
    partitiontable: {
      sectorsize: 512,
      partitions: [{ node: 'disk1', start: FIRST_SECTOR, size: sectors - FIRST_SECTOR, type: '83' }],
    },
  };
  const trimmed = (calls: readonly HostCall[]): boolean =>
    calls.some((call) => call.kind === 'run' && call.argv.includes('fstrim'));
  return new RecordingHost(reporter, {
    answers: [
      { match: /^virt-install --version$/, runForReal: true },
      { match: /^getfacl /, runForReal: true },
      { match: /^sfdisk --json /, result: { stdout: JSON.stringify(table) } },
      { match: /^blkid /, result: { stdout: 'ext4\n' } },
    ],
    stat: (_path, calls) => ({ size: spec.imageSize, blocks: trimmed(calls) ? 0 : sectors, uid: 0, gid: 0 }),
  });
}
