import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { formatBytes } from '../common/units.js';
import type { BuildContext } from '../context/build-context.js';
import { throttled } from '../common/reporter.js';

/** Large reads keep the hash busy; memory stays constant at a few of these. */
const READ_SIZE = 4 << 20;

/** SHA-256 over a stream: constant memory whatever the image size. */
export async function sha256File(
  path: string,
  onProgress?: (done: number, total: number) => void,
  signal?: AbortSignal,
): Promise<string> {
  const total = (await stat(path)).size;
  const hash = createHash('sha256');
  let done = 0;
  const stream = createReadStream(path, { highWaterMark: READ_SIZE, signal });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    done += chunk.length;
    onProgress?.(done, total);
  }
  return hash.digest('hex');
}

/**
 * Hash the image and write `<hex>  <file name>` — what `sha256sum -c` reads —
 * to `checksumPath`.
 */
export async function writeChecksum(
  ctx: BuildContext,
  imagePath: string,
  checksumPath: string,
  finalName = basename(imagePath),
): Promise<string> {
  // A recorded build has no image to hash.
  if (!ctx.host.live) {
    ctx.reporter.info(`would write the SHA-256 of ${finalName} to ${basename(checksumPath)}`);
    return '';
  }
  const started = Date.now();
  const progress = throttled(10_000, (message) => ctx.reporter.progress('checksum', message));
  const digest = await sha256File(
    imagePath,
    (done, total) =>
      progress(
        `hashed ${formatBytes(done)} of ${formatBytes(total)} (${total ? ((100 * done) / total).toFixed(0) : 100}%)`,
      ),
    ctx.signal,
  );
  const seconds = (Date.now() - started) / 1000;
  const size = (await stat(imagePath)).size;
  ctx.reporter.info(`SHA 256 sum of ${finalName}: ${digest} (${formatBytes(size)} in ${seconds.toFixed(1)} s)`);
  await ctx.host.writeFile(checksumPath, `${digest}  ${finalName}\n`, 0o644);
  return digest;
}
