/**
 * A reader that goes away (`image-factory --help | head -1`) is not an error
 * of the command. On stdout, nothing more is wanted: exit quietly with the
 * exit code so far. On stderr, keep going without the log lines, so that a
 * build still removes what it created; the log file, if any, still gets them.
 */
export function quietOnBrokenPipe(
  stdout: NodeJS.WriteStream = process.stdout,
  stderr: NodeJS.WriteStream = process.stderr,
): void {
  const brokenPipe = (error: NodeJS.ErrnoException): boolean =>
    error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED';
  stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (!brokenPipe(error)) throw error;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
  stderr.on('error', (error: NodeJS.ErrnoException) => {
    if (!brokenPipe(error)) throw error;
  });
}
