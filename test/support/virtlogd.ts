import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * What virtlogd does when a console log reaches its max_size (2 MiB): the
 * oldest of its max_backups (3) removed, the others shifted (`.0` to `.1`,
 * `.1` to `.2`), the log renamed to `.0` and a new, empty log created
 * (`newLog: false` stops between the renames and the new log).
 */
export function rotateLikeVirtlogd(log: string, { backups = 3, newLog = true } = {}): void {
  rmSync(`${log}.${backups - 1}`, { force: true });
  for (let n = backups - 1; n > 0; n--) {
    if (existsSync(`${log}.${n - 1}`)) renameSync(`${log}.${n - 1}`, `${log}.${n}`);
  }
  renameSync(log, `${log}.0`);
  if (newLog) writeFileSync(log, '');
}
