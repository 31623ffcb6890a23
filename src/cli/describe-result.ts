import { formatBytes, formatDuration } from '../common/units.js';
import { firstImage } from '../pipeline/artifacts.js';
import type { BuildResult } from '../pipeline/build.js';
import { describeFirmware } from '../vm/virt-install.js';

/** The finished build in a few lines for the terminal. */
export function describeResult(result: BuildResult): string {
  const image = firstImage(result.artifacts);
  const lines = [
    `image:       ${image.final}`,
    `size:        ${formatBytes(image.size ?? 0)} (${formatBytes(result.diskUsage)} on disk)`,
    `sha256:      ${image.sha256}`,
    `accelerator: ${result.accelerator}`,
    `firmware:    ${describeFirmware(result.firmware)}`,
    `installer:   ${verifiedLine(result)}`,
    ...(result.bootSeconds !== undefined
      ? [
          `boot test:   came up in ${result.bootSeconds.toFixed(1)} s${result.cloudInitFinished ? ', cloud-init finished' : ''}`,
        ]
      : []),
    ...result.layout.filesystems.map(
      (fs) => `file system: ${fs.device} ${fs.type}${fs.mountPoint ? ` at ${fs.mountPoint}` : ''}: ${fs.action}`,
    ),
    `steps:       ${result.steps.map((s) => `${s.step} ${formatDuration(s.durationMs)}`).join(', ')}`,
  ];
  return lines.join('\n');
}

/** What the installer files were verified against, or that they were not. */
function verifiedLine(result: BuildResult): string {
  const chain = result.installer.verification;
  if (!chain) return 'not verified against a checksum list';
  const by = chain.fingerprints.length ? `, signed by ${chain.fingerprints.join(', ')}` : ' (unsigned)';
  return `verified against ${chain.checksums.display} (SHA-256 ${chain.checksums.sha256})${by}`;
}
