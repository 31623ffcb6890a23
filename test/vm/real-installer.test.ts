import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { dialogTitles, ensureDebianInstaller, installerPackage } from '../support/debian-installer.js';
import { makeWorkDir } from '../support/fixture.js';
import { leftovers } from '../support/leftovers.js';
import { builtStem, runCli } from '../support/run-cli.js';

/**
 * The real debian-installer, from Debian's package, with the SHIPPED
 * definition: only `linux` and `initrd` are pointed at the package's files,
 * in ~/.config/image-factory.conf, read after the shipped
 * data/image-factory.conf (HOME is the test's folder). Its preseed, append
 * line, RAM and disk are as shipped. The archive here serves no .udeb files,
 * so the installer stops at "Download installer components" with an error
 * dialog and waits: stall detection must end the build.
 */

// The installer has quiet stretches of more than 90 s before its error dialog (a 90 s stall-timeout
// stopped it early): 3 minutes keeps the stall at the dialog on a loaded machine too.
const STALL_TIMEOUT = '3m';

const workDirs: string[] = [];
after(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

/** A log line's time, from `2026-12-01 11:02:44,593 image-factory [1] INFO: …`. */
function loggedAt(stderr: string, pattern: RegExp): number {
  const line = stderr.split('\n').find((text) => pattern.test(text));
  assert.ok(line, `no log line matches ${pattern}`);
  const [, date, time, ms] = /^(\S+) (\d\d:\d\d:\d\d),(\d{3}) /.exec(line) ?? [];
  return new Date(`${date}T${time}.${ms}`).getTime();
}

/** The questions (newt titles `[!!] …`, `[!] …`, `[?] …`, `[.] …`) among the dialogs the console showed. */
function questions(titles: string[]): string[] {
  return titles.filter((title) => /^\[(?:!!|!|\?|\.)\] /.test(title));
}

for (const release of [12, 13] as const) {
  const image = `Debian-${release}-server`;
  describe(`the shipped ${image} definition on the real debian-installer ${release}`, () => {
    test('takes its answers from the preseed, reaches the archive, and is stopped by stall detection at the component download; nothing is left', async (t) => {
      const installer = ensureDebianInstaller(release);
      t.diagnostic(`installer: ${installerPackage(installer)}`);
      const dir = makeWorkDir(`real-${release}`);
      workDirs.push(dir);
      mkdirSync(join(dir, '.config'));
      // Trixie's InRelease here lists a SHA256SUMS that the archive does not serve (an archive out of step
      // with itself): its chain cannot verify, so the Debian 13 run goes without verification.
      const unverified = release === 13 ? 'installer-checksums =\ninstaller-release =\ninstaller-keyring =\n' : '';
      writeFileSync(
        join(dir, '.config', 'image-factory.conf'),
        `[${image}]\nlinux = file://${installer}/linux\ninitrd = file://${installer}/initrd.gz\n${unverified}`,
      );
      const started = Date.now();
      const run = await runCli(['--stall-timeout', STALL_TIMEOUT, '--cache-dir', join(dir, 'cache'), image], {
        cwd: dir,
        env: { HOME: dir, IMAGE_FACTORY_CONFIG: undefined },
      });
      const seconds = (Date.now() - started) / 1000;
      const stem = builtStem(run.stderr, image);

      // Ended by stall detection, with exit code 1, naming the install step and quoting the error screen.
      assert.equal(run.code, 1, run.stderr.slice(-4000));
      const failure = run.stderr.slice(run.stderr.indexOf('install step failed:'));
      assert.match(
        failure,
        /^install step failed: the installer seems to be waiting for input: its screen and its disk did not change for 3m00s \(stall-timeout\), so the VM was stopped\n(?:.* image-factory \[\d+\] ERROR: )?The console's last screen:\n/,
      );
      assert.match(failure, /\| .*┤ \[!!\] Download installer components ├/);
      assert.match(failure, /\| .*The installer failed to download a file from the mirror/);
      assert.ok(!failure.includes('\x1b'), 'the screen is text, not escape sequences');
      t.diagnostic(failure.split('\n').slice(0, 30).join('\n'));

      // The preseed answered everything: the only question shown was the download error.
      const titles = await dialogTitles(join(dir, `${stem}.console.log`));
      t.diagnostic(`dialogs seen: ${titles.join(' | ')}`);
      assert.deepEqual(questions(titles), ['[!!] Download installer components'], titles.join('\n'));
      for (const asked of [/language|locale|location|country/i, /keyboard|keymap/i, /host ?name|domain/i])
        assert.ok(!titles.some((title) => asked.test(title)), `a dialog asked about ${asked}: ${titles.join(' | ')}`);
      // It configured the network by DHCP and reached the preseed's mirror: choose-mirror accepted the
      // mirror (its Release file; a mirror it cannot reach is "Bad archive mirror", a question), and
      // what failed is a file from it, an installer component (a .udeb, which the archive here lacks).
      assert.ok(titles.includes('Configuring the network with DHCP'), titles.join(' | '));
      assert.ok(titles.includes('Checking the Debian archive mirror'), titles.join(' | '));
      assert.doesNotMatch(failure, /Bad archive mirror|Choose a mirror/);

      // How long from the installer's start to the stall report.
      const vmStarted = loggedAt(run.stderr, /INFO: Calling virt-install /);
      const stallReported = loggedAt(run.stderr, /WARNING: the installer's screen and disk have not changed/);
      t.diagnostic(
        `virt-install started to stall report: ${((stallReported - vmStarted) / 1000).toFixed(0)} s; whole test run ${seconds.toFixed(0)} s`,
      );
      assert.ok(stallReported - vmStarted < 12 * 60_000, 'the stall was reported within 12 minutes of the start');

      // Nothing left behind: no domain, loop device, mount or staging folder, and no image.
      assert.deepEqual(leftovers(dir, stem), []);
      assert.deepEqual(
        readdirSync(dir).filter((name) => /\.(raw|qcow2|sha256sum)$/.test(name)),
        [],
      );
      // The preseed is injected into the initrd (the shipped answer-delivery): no answer server was started.
      assert.doesNotMatch(run.stderr, /serving the answer file/i);
    });
  });
}
