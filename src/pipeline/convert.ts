import type { BuildContext } from './context.js';
import { throttled } from './reporter.js';

export function convertCommand(ctx: BuildContext, rawPath: string, qcow2Path: string): string[] {
  const command = ['qemu-img', 'convert', '-p', '-f', 'raw', '-O', 'qcow2'];
  // Out-of-order writes let qemu-img keep several requests in flight on the
  // output; the image is new, so order does not matter.
  command.push('-W');
  if (ctx.spec.compress !== 'none') {
    command.push('-c', '-o', `compression_type=${ctx.spec.compress}`);
  }
  command.push(rawPath, qcow2Path);
  return command;
}

/** `qemu-img convert -O qcow2`, with its progress passed on at a calm rate. */
export async function convertToQcow2(ctx: BuildContext, rawPath: string, qcow2Path: string): Promise<void> {
  const progress = throttled(10_000, (message) => ctx.reporter.progress('convert', message));
  let last = '';
  await ctx.host.run(convertCommand(ctx, rawPath, qcow2Path), {
    onLine: (line) => {
      const match = /\((\d+(?:\.\d+)?)\/100%\)/.exec(line);
      if (!match) return;
      const percent = Number(match[1]).toFixed(0);
      if (percent === last) return;
      last = percent;
      progress(`converted ${percent}%`);
    },
  });
}
