/**
 * Text from the guest reaches the reporters (file names, os-release, installer
 * logs, a command's output): whatever it holds, no line of what they print may
 * be taken by the Actions runner for a workflow command unless the project
 * wrote one. The runner reads a step's output with .NET's ReadLine (a line
 * ends at `\n`, `\r` or `\r\n`; U+2028 and U+2029 are taken for line ends here
 * too, to be safe), trims the line's leading blanks and takes `::name::` at its
 * start for a command; the old form `##[name]` counts anywhere in a line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ActionReporter } from '../../src/action/action-reporter.js';
import { LogReporter } from '../../src/pipeline/log-reporter.js';
import { printableLine, printableLines } from '../../src/common/printable-text.js';
import type { Reporter } from '../../src/common/reporter.js';
import { runMain } from '../support/in-process-cli.js';

/** Every C0 and C1 control character, DEL, and the Unicode line and paragraph separators. */
const CONTROLS = [
  ...Array.from({ length: 0x20 }, (_, code) => code),
  ...Array.from({ length: 0x21 }, (_, i) => 0x7f + i),
  0x2028,
  0x2029,
].map((code) => String.fromCharCode(code));

/** A guest file name that tries to end the line and start a command after each way of ending it. */
const forged = (c: string): string =>
  `/tmp/x${c}::set-output name=image-path::evil.qcow2${c}::error::forged${c} ::warning::blank first` +
  `${c}\u0085::notice::nel${c}##[set-output name=image-path;]old form${c}\x1b[2J\x1b]0;title\x07`;

/** The runner's lines: split where ReadLine would end one (and at U+2028/9), leading blanks trimmed as .NET does. */
function runnerLines(text: string): string[] {
  return text.split(/\r\n|\r|\n|\u2028|\u2029/).map((line) => line.replace(/^[\s\u0085]+/, ''));
}

/** What each call may print as a command of its own: the project's annotations and groups. */
const CALLS: Array<{ name: string; call: (reporter: Reporter, text: string) => void; commands: string[] }> = [
  { name: 'info', call: (r, t) => r.info(`Content of /var/log/installer/syslog:\n${t}\nend`), commands: [] },
  { name: 'notice', call: (r, t) => r.notice(t), commands: ['notice'] },
  { name: 'warning', call: (r, t) => r.warning(`not reading /${t}: a symlink`), commands: ['warning'] },
  { name: 'error', call: (r, t) => r.error(`first line\n${t}`), commands: ['error'] },
  { name: 'command', call: (r, t) => r.command(['guestfish', '--', 'rm', t]), commands: [] },
  { name: 'output', call: (r, t) => r.output(t), commands: [] },
  { name: 'progress', call: (r, t) => r.progress('install', t), commands: [] },
  {
    name: 'a step',
    call: (r, t) => {
      r.stepStarted('scrub');
      r.info(t);
      r.stepFinished('scrub', 1000, true);
    },
    commands: ['group', 'endgroup'],
  },
  {
    // A provisioner's line, from the configuration, is a group's title.
    name: 'a section of a step',
    call: (r, t) => {
      r.stepStarted('provision');
      r.section?.(`Provision, provisioner 1/1: shell echo ${t}`);
      r.info(t);
      r.stepFinished('provision', 1000, true);
    },
    commands: ['group', 'endgroup', 'group', 'endgroup'],
  },
];

/** What process.stdout was given while `work` ran (where @actions/core writes). */
function stdoutOf(work: () => void): string {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  try {
    work();
  } finally {
    process.stdout.write = write;
  }
  return chunks.join('');
}

/** Nothing in the output drives a terminal or ends a line but `\n`: every control character is shown as an escape. */
function assertNoControls(text: string, what: string): void {
  // eslint-disable-next-line no-control-regex
  const control = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/.exec(text);
  assert.equal(control, null, `${what}: U+${control?.[0].charCodeAt(0).toString(16)} printed as it is:\n${text}`);
}

describe('untrusted text in the reporters', () => {
  test("the action's log: no line starts with a workflow command but the project's own, whatever control character the text holds", () => {
    for (const c of CONTROLS) {
      for (const { name, call, commands } of CALLS) {
        const what = `${name} with U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
        const text = stdoutOf(() => call(new ActionReporter(), forged(c)));
        const lines = runnerLines(text);
        const issued = lines.filter((line) => line.startsWith('::')).map((line) => /^::([a-z-]+)/.exec(line)?.[1]);
        assert.deepEqual(issued, commands, `${what}: the commands in\n${JSON.stringify(text)}`);
        assert.ok(!lines.some((line) => line.includes('##[')), `${what}: an old-form command in\n${text}`);
        assertNoControls(text, what);
        assert.match(text, /\/tmp\/x/, `${what}: the text is still shown`);
      }
    }
  });

  test("a step's sections (the provisioners) each fold into a group of their own, titled by the line, a secret masked", () => {
    const reporter = new ActionReporter();
    reporter.mask(['s3cret-value']);
    const text = stdoutOf(() => {
      reporter.stepStarted('provision');
      reporter.section('Provision, provisioner 1/2: shell echo s3cret-value');
      reporter.info('first');
      reporter.section('Provision, provisioner 2/2: file a /b');
      reporter.stepFinished('provision', 1000, true);
    });
    const groups = text.split('\n').filter((line) => line.startsWith('::'));
    assert.deepEqual(groups, [
      '::group::Boot the installed system and run the provisioners over SSH (provision)',
      '::endgroup::',
      '::group::Provision, provisioner 1/2: shell echo ***',
      '::endgroup::',
      '::group::Provision, provisioner 2/2: file a /b',
      '::endgroup::',
    ]);
  });

  test("the command's stderr and log file: every line starts with the time, the name and the level, whatever the text holds", () => {
    for (const c of CONTROLS) {
      for (const { name, call } of CALLS) {
        const what = `${name} with U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
        const written: string[] = [];
        call(new LogReporter('image-factory', (text) => written.push(text)), forged(c));
        const text = written.join('');
        const lines = runnerLines(text.replace(/\n$/, ''));
        for (const line of lines)
          assert.match(
            line,
            /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} image-factory \[\d+\] (INFO|WARNING|ERROR): /,
            what,
          );
        assert.ok(!lines.some((line) => line.includes('##[')), `${what}: an old-form command in\n${text}`);
        assertNoControls(text, what);
      }
    }
  });

  test("the command's own messages before the log (bad input): every line prefixed, control characters shown", async () => {
    const run = await runMain(['--format', `qcow3\x1b[2J\u2028::error::forged\x0b::warning::x`, 'img'], {
      IMAGE_FACTORY_CONFIG: '/dev/null',
    });
    assert.equal(run.code, 2);
    for (const line of runnerLines(run.stderr.replace(/\n$/, ''))) assert.match(line, /^image-factory: error: /);
    assertNoControls(run.stderr, 'the usage error');
    assert.match(run.stderr, /qcow3\\x1b\[2J\\u2028::error::forged\\x0b::warning::x/);
  });

  test("--print-config's JSON escapes C1 controls, U+2028 and U+2029 too (JSON.stringify leaves them); commander's messages are printable", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reporter-output-'));
    try {
      const value = 'a\x9b2J\u2028::error::forged\x7f\x1b[2J';
      const config = join(dir, 'image-factory.conf');
      writeFileSync(config, `[img]\nlinux = /x\ninitrd = /y\nnote = ${value}\n`);
      const run = await runMain(['--print-config', 'img'], { IMAGE_FACTORY_CONFIG: config });
      assert.equal(run.code, 0, run.stderr);
      assert.equal((JSON.parse(run.stdout) as Record<string, string>).note, value);
      assertNoControls(run.stdout, '--print-config');
      assertNoControls(run.stderr, 'the unknown-key warning');
      const refused = await runMain([`--colour\x1b[2J\r::error::forged`, 'img'], { IMAGE_FACTORY_CONFIG: config });
      assert.equal(refused.code, 2);
      assertNoControls(refused.stderr, "commander's message");
      assert.match(refused.stderr, /--colour\\x1b\[2J\\r::error::forged/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a password is masked before its control characters are shown as escapes (the runner would no longer find it)', () => {
    const secret = 'pa\x1bss\rword';
    const text = stdoutOf(() => {
      const reporter = new ActionReporter();
      reporter.mask([secret]);
      reporter.info(`rsync://u:${secret}@host/`);
      reporter.output(`auth failed for ${secret}`);
      reporter.warning(`could not log in with ${secret}`);
    });
    assert.doesNotMatch(text, /pa.{0,4}ss.{0,4}word/);
    const written: string[] = [];
    const log = new LogReporter('image-factory', (line) => written.push(line));
    log.mask([secret]);
    log.command(['rsync', `rsync://u:${secret}@host/`]);
    assert.doesNotMatch(written.join(''), /pa.{0,4}ss.{0,4}word/);
  });

  test('escapes are shown as a reader would write them, and making text printable twice changes nothing', () => {
    assert.equal(
      printableLine('a\rb\nc\td\x1be\x00f\x7fg\x85h\u2028i'),
      'a\\rb\\nc\td\\x1be\\x00f\\x7fg\\x85h\\u2028i',
    );
    assert.equal(printableLines('a\rb\nc##[d'), 'a\\rb\nc#\\x23[d');
    for (const c of CONTROLS) {
      const once = printableLines(forged(c));
      assert.equal(printableLines(once), once);
      assert.equal(printableLine(printableLine(forged(c))), printableLine(forged(c)));
    }
  });
});
