import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TerminalScreen, screenTitle } from '../../src/vm/screen.js';
import { REPO_ROOT } from './fixture.js';

/**
 * The real debian-installer netboot kernel and initrd of a Debian release,
 * from the package debian-installer-N-netboot-amd64 (Debian's archive here
 * serves the package, not dists/…/installer-amd64/): fetched once into
 * test/.cache/debian-installer-N (git-ignored), reused while the fetch
 * script is unchanged. Returns the folder holding `linux` and `initrd.gz`.
 */
export function ensureDebianInstaller(release: 12 | 13): string {
  const dir = join(REPO_ROOT, 'test', '.cache', `debian-installer-${release}`);
  execFileSync('bash', [join(REPO_ROOT, 'test', 'real-installer', 'fetch-debian-installer.sh'), dir, String(release)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return dir;
}

/** The package and version the folder's files came from (the stamp's second line). */
export function installerPackage(dir: string): string {
  return readFileSync(join(dir, 'stamp'), 'utf8').split('\n')[1] ?? '';
}

/**
 * The titles of the dialogs a console log showed, in order, each once in a
 * row: the log replayed through the terminal emulator a few hundred bytes at
 * a time. A question waits for its answer, so every question asked is among
 * them; a progress dialog may pass too fast to be seen.
 */
export async function dialogTitles(consoleLog: string): Promise<string[]> {
  const bytes = readFileSync(consoleLog, 'utf8');
  const screen = new TerminalScreen();
  const titles: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 256) {
    await screen.write(bytes.slice(offset, offset + 256));
    const title = screenTitle(screen.lines());
    if (title !== undefined && title !== titles[titles.length - 1]) titles.push(title);
  }
  screen.dispose();
  return titles;
}
