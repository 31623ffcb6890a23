import { constants, openSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

/** How many `<stem>.<n><ext>` names are tried after the asked one before giving up. */
const MAX_ALTERNATIVES = 99;

/**
 * Create a new output file that nothing else has: O_CREAT|O_EXCL refuses an
 * existing file and any symlink (dangling or not), O_NOFOLLOW refuses a
 * symlink whatever else the flags say. The working folder may be a
 * checked-out repository, and a finished build's log is never truncated:
 * when the name is taken, `<stem>.1<ext>`, `<stem>.2<ext>`, … are tried.
 * Returns the descriptor and the name it got.
 */
export function createOutputFile(path: string, mode = 0o644): { fd: number; path: string } {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const ext = extname(path);
  const stem = join(dirname(path), basename(path, ext));
  for (let n = 0; n <= MAX_ALTERNATIVES; n++) {
    const candidate = n === 0 ? path : `${stem}.${n}${ext}`;
    try {
      return { fd: openSync(candidate, flags, mode), path: candidate };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ELOOP') throw error;
    }
  }
  throw new Error(`${path} and ${MAX_ALTERNATIVES} alternative names (${stem}.N${ext}) exist already`);
}
