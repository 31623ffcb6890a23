import { basename, dirname } from 'node:path';
import type { BuildContext } from '../context/build-context.js';

/**
 * `post-build-command <image>`: the command runs through the shell (so a
 * value like `notify --channel images` works) with the image's file name as
 * its first argument, in the folder that holds the image.
 */
export async function runPostBuildCommand(ctx: BuildContext, command: string, imagePath: string): Promise<void> {
  await ctx.host.run(['sh', '-c', `${command} "$@"`, 'post-build-command', basename(imagePath)], {
    cwd: dirname(imagePath),
    onLine: (line) => ctx.reporter.output(line),
  });
}
