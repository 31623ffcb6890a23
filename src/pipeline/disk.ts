import type { BuildContext } from '../context/build-context.js';

/** `qemu-img create -f raw`: a sparse file of the image's size. */
export async function createRawDisk(ctx: BuildContext, path: string): Promise<void> {
  await ctx.host.run(['qemu-img', 'create', '-f', 'raw', path, String(ctx.spec.imageSize)]);
}
