import type { ImageFormat } from '../config/image-spec.js';
import type { BuildContext } from '../context/build-context.js';
import { throttled } from '../common/reporter.js';

/** qemu-img's name of each format (VHD is its `vpc` driver). */
export const QEMU_FORMAT: Record<ImageFormat, string> = {
  raw: 'raw',
  qcow2: 'qcow2',
  vmdk: 'vmdk',
  vhdx: 'vhdx',
  vhd: 'vpc',
};

/** `qemu-img convert` from the raw disk to one format, with the options each format's consumers need. */
export function convertCommand(ctx: BuildContext, rawPath: string, outPath: string, format: ImageFormat): string[] {
  const command = ['qemu-img', 'convert', '-p', '-f', 'raw', '-O', QEMU_FORMAT[format]];
  switch (format) {
    case 'qcow2':
      // Measured with test/bench/convert-flags.bench.ts (qemu-img 7.2, 2 cores,
      // 4 GiB disk with 200 MiB kept): uncompressed, neither -W nor -m 4/16
      // changes the time beyond the noise (0.1-0.3 s either way), while -W
      // allocates the qcow2's clusters out of guest order (10x more extents in
      // `qemu-img map`), so it is left off. Compressed, -W lets the compression
      // run on every core: zlib 6.5 -> 4.1 s, zstd 1.2 -> 0.8 s, same size.
      // -m stays at qemu-img's default of 8 coroutines.
      if (ctx.spec.compress !== 'none') command.push('-W', '-c', '-o', `compression_type=${ctx.spec.compress}`);
      break;
    case 'vmdk':
      // The one-file, compressed, read-only form that OVA packages and vSphere imports take.
      command.push('-o', 'subformat=streamOptimized');
      break;
    case 'vhd':
      // Fixed (Azure takes no dynamic VHD), and the virtual size exactly the disk's
      // (force_size: not rounded to qemu's CHS geometry); the disk is made MiB-aligned.
      command.push('-o', 'subformat=fixed,force_size=on');
      break;
    default:
      break;
  }
  command.push(rawPath, outPath);
  return command;
}

/** `qemu-img convert` to one format, with its progress passed on at a calm rate. */
export async function convertImage(
  ctx: BuildContext,
  rawPath: string,
  outPath: string,
  format: ImageFormat,
): Promise<void> {
  const progress = throttled(10_000, (message) => ctx.reporter.progress('convert', message));
  let last = '';
  await ctx.host.run(convertCommand(ctx, rawPath, outPath, format), {
    onLine: (line) => {
      const match = /\((\d+(?:\.\d+)?)\/100%\)/.exec(line);
      if (!match) return;
      const percent = Number(match[1]).toFixed(0);
      if (percent === last) return;
      last = percent;
      progress(`${format}: converted ${percent}%`);
    },
  });
}
