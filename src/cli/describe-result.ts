import { formatBytes, formatDuration } from '../config/units.js';
import type { BuildResult } from '../pipeline/build.js';

/** The finished build in a few lines for the terminal. */
export function describeResult(result: BuildResult): string {
  const lines = [
    `image:       ${result.imagePath}`,
    `size:        ${formatBytes(result.size)} (${formatBytes(result.diskUsage)} on disk)`,
    `sha256:      ${result.sha256}`,
    `accelerator: ${result.accelerator}`,
    ...(result.bootSeconds !== undefined
      ? [
          `boot test:   came up in ${result.bootSeconds.toFixed(1)} s${result.cloudInitFinished ? ', cloud-init finished' : ''}`,
        ]
      : []),
    `steps:       ${result.steps.map((s) => `${s.step} ${formatDuration(s.durationMs)}`).join(', ')}`,
  ];
  return lines.join('\n');
}
