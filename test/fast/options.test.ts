import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { Input } from '../../src/action/constants.js';
import { readInputs, type InputReader } from '../../src/action/inputs.js';
import { ConfigError, ConfigParser } from '../../src/config/configparser.js';
import { applyOverrides, resolveImageSpec } from '../../src/config/image-spec.js';
import {
  badValueMessage,
  camelCase,
  OPTIONS,
  optionByFlag,
  optionByKey,
  valueProblem,
  type OptionKey,
  type OptionSpec,
  type Overrides,
} from '../../src/config/options.js';
import { UsageError } from '../../src/config/usage-error.js';
import { REPO_ROOT } from '../support/fixture.js';
import { runMain, type InProcessRun } from '../support/in-process-cli.js';
import { README_END, README_START, flagMarkdown, optionsMarkdown } from '../support/options-markdown.js';

const TABLE = OPTIONS as readonly OptionSpec[];
/** The compiled command, run from build/ (no bundle needed). */
const CLI = join(REPO_ROOT, 'build', 'src', 'cli', 'index.js');
const README = join(REPO_ROOT, 'README.md');
/** The generated table of options, which the README links to. */
const OPTIONS_DOC = join(REPO_ROOT, 'docs/options.md');

interface ActionInput {
  description?: string;
  required?: boolean;
  default?: string;
}
const actionInputs = (
  parseYaml(readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8')) as { inputs: Record<string, ActionInput> }
).inputs;

const scratch = mkdtempSync(join(tmpdir(), 'options-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * The command's main() in this process, as a user calls it (spawning it for each of these checks cost a second
 * each; test/command and 'a reader that goes away' below run the built command itself).
 */
async function runCli(args: string[], env: Record<string, string> = {}): Promise<InProcessRun> {
  const run = await runMain(args, env);
  assert.equal(run.thrown, undefined, `the command threw: ${String(run.thrown)}`);
  return run;
}

const CONFIG_FILE = join(scratch, 'image-factory.conf');
const MINIMAL = '[img]\nlinux = /boot/vmlinuz\ninitrd = /boot/initrd.img\n';

/** The configuration's wording of a bad value of `key`, read from a file at line 4. */
function configError(key: OptionKey, value: string): string {
  const config = new ConfigParser();
  config.read(`${MINIMAL}${key} = ${value}\n`, CONFIG_FILE);
  const hadSection = applyOverrides(config, 'img', { cache_dir: '/tmp/cache' });
  try {
    resolveImageSpec(config, 'img', {
      outputDir: scratch,
      date: '2026-01-01',
      knownImages: ['img'],
      hadSection,
      upload: false,
    });
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error.message;
  }
  assert.fail(`${key} = ${value} was accepted`);
}

/** The action's wording of a bad value of an input. */
function inputError(input: string, value: string): string {
  const given: Record<string, string> = {
    image: 'img',
    'install-dependencies': 'true',
    upload: 'true',
    'output-dir': scratch,
    [input]: value,
  };
  const read: InputReader = (name) => given[name] ?? '';
  try {
    readInputs(read);
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error.message;
  }
  assert.fail(`input ${input}: ${value} was accepted`);
}

describe('the option table', () => {
  test('names each key, flag and input once; choices hold their default; defaults pass their own check', () => {
    for (const field of ['key', 'input'] as const) {
      const names = TABLE.map((entry) => entry[field]).filter((name) => name !== undefined);
      assert.deepEqual(names, [...new Set(names)], `a ${field} is declared twice`);
    }
    const flags = TABLE.flatMap((entry) =>
      entry.cli ? [entry.cli.long, ...(entry.cli.short ? [entry.cli.short] : [])] : [],
    );
    assert.deepEqual(flags, [...new Set(flags)], 'a flag is declared twice');
    for (const entry of TABLE) {
      const name = entry.key ?? entry.input ?? entry.cli?.long;
      assert.ok(entry.help.length > 10, `${name} needs help text`);
      assert.ok(entry.key !== undefined || entry.cli !== undefined || entry.input !== undefined, `${name} has no door`);
      if (entry.kind === 'choice') assert.ok(entry.choices?.length, `${name} has no choices`);
      if (entry.choices && entry.default !== undefined)
        assert.equal(entry.choices[0], entry.default, `${name}: the default comes first`);
      if (entry.default !== undefined)
        assert.equal(valueProblem(entry, entry.default), undefined, `${name}'s default fails its check`);
      if (entry.cli?.arg !== undefined)
        assert.notEqual(entry.kind, 'boolean', `${name}: a boolean flag takes no value`);
      if (entry.cli && entry.kind !== 'boolean')
        assert.ok(entry.cli.arg, `${name}: a flag of a value needs a placeholder`);
    }
  });

  test('Overrides has exactly the keys that a flag or an input sets', () => {
    const keys: Record<keyof Overrides, true> = {
      cache_dir: true,
      format: true,
      'image-size': true,
      mac: true,
      'installer-logs': true,
      'log-file': true,
      'log-filename': true,
      accelerator: true,
      arch: true,
      firmware: true,
      'install-timeout': true,
      'stall-timeout': true,
      'zero-free-space': true,
      generalize: true,
      'previous-manifest': true,
      'previous-metrics': true,
      'skip-unchanged': true,
      compress: true,
      'boot-test': true,
      'signing-key': true,
      'signing-passphrase-file': true,
      strict: true,
      provision: true,
      'provision-timeout': true,
      'boot-test-command': true,
      'boot-test-playbook': true,
    };
    const fromTable = TABLE.filter((entry) => entry.key !== undefined && (entry.cli || entry.input)).map(
      (entry) => entry.key,
    );
    assert.deepEqual(fromTable.sort(), Object.keys(keys).sort());
  });

  test('the Input enum names exactly the inputs of the table', () => {
    const inputs = TABLE.map((entry) => entry.input).filter((input) => input !== undefined);
    assert.deepEqual([...inputs].sort(), Object.values(Input).sort());
  });
});

describe('action.yml', () => {
  test("declares exactly the table's inputs, each with a description, required and default as the table says", () => {
    const inputs = TABLE.filter((entry) => entry.input !== undefined);
    assert.deepEqual(Object.keys(actionInputs).sort(), inputs.map((entry) => entry.input).sort());
    for (const entry of inputs) {
      const declared = actionInputs[entry.input as string];
      assert.ok((declared.description ?? '').trim().length > 20, `${entry.input} needs a description`);
      assert.equal(declared.required ?? false, entry.required ?? false, `${entry.input}: required`);
      assert.equal(declared.default, entry.inputDefault, `${entry.input}: default`);
    }
  });

  test('the description of a choice input names every value', () => {
    for (const entry of TABLE.filter((option) => option.input !== undefined && option.choices !== undefined)) {
      for (const choice of entry.choices ?? []) {
        assert.match(
          actionInputs[entry.input as string].description ?? '',
          new RegExp(`\\b${choice}\\b`),
          `${entry.input} lacks ${choice}`,
        );
      }
    }
  });
});

describe('docs/options.md', () => {
  test('the table of options between the markers is the one the option table renders', () => {
    const text = readFileSync(OPTIONS_DOC, 'utf8');
    const start = text.indexOf(README_START);
    const end = text.indexOf(README_END);
    assert.ok(start >= 0 && end > start, `docs/options.md needs ${README_START} … ${README_END}`);
    const expected = `${README_START}\n${optionsMarkdown()}\n${README_END}`;
    const actual = text.slice(start, end + README_END.length);
    if (process.env.UPDATE_DOCS === '1' && actual !== expected) {
      writeFileSync(OPTIONS_DOC, text.slice(0, start) + expected + text.slice(end + README_END.length));
      return;
    }
    assert.equal(
      actual,
      expected,
      'docs/options.md is out of date: run UPDATE_DOCS=1 node --test build/test/fast/options.test.js',
    );
  });

  test('the README links to it', () => {
    assert.match(readFileSync(README, 'utf8'), /\]\(docs\/options\.md\)/);
  });
});

describe('one entry drives every door', () => {
  let help: InProcessRun;
  before(async () => {
    help = await runCli(['--help']);
  });

  test('--help lists every flag of the table with its help, and no other', () => {
    assert.equal(help.code, 0, help.stderr);
    const listed = [...help.stdout.matchAll(/^ {2}(?:-[a-z], )?--([a-z-]+)/gm)]
      .map((match) => match[1])
      .filter((flag) => flag !== 'help');
    const expected = TABLE.flatMap((entry) => {
      if (entry.cli === undefined) return [];
      const forms = entry.cli.onlyNo ? [] : [entry.cli.long];
      return entry.cli.noHelp !== undefined ? [...forms, `no-${entry.cli.long}`] : forms;
    });
    assert.deepEqual(listed, expected);
  });

  // A sample of every kind with a door: choice, size, duration and a checked string.
  const samples: Array<[OptionKey, string]> = [
    ['format', 'vdi'],
    ['compress', 'xz'],
    ['image-size', 'huge'],
    ['install-timeout', 'soon'],
    ['stall-timeout', 'soon'],
    ['mac', '52:54:00:zz:00:01'],
  ];
  for (const [key, bad] of samples) {
    test(`${key}: the key, the flag, the input and the wording of '${bad}' come from its entry`, async () => {
      const entry = optionByKey(key) as OptionSpec;
      const cli = entry.cli;
      assert.ok(cli !== undefined && entry.input !== undefined);
      assert.equal(optionByFlag(cli.long), entry);
      const problem = valueProblem(entry, bad);
      assert.ok(problem !== undefined && problem.startsWith(`'${bad}' `), String(problem));

      // The configuration: file:line: [section] key: problem.
      assert.equal(configError(key, bad), `${CONFIG_FILE}:4: [img] ${key}: ${problem}`);
      // --help: the flag as the table spells it.
      const flag = `${cli.short ? `-${cli.short}, ` : ''}--${cli.long}${cli.arg ? ` <${cli.arg}>` : ''}`;
      assert.match(
        help.stdout,
        new RegExp(
          `^ {2}${flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +${entry.help.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
          'm',
        ),
      );
      // The command: a bad value names the flag, in the same words.
      const run = await runCli([`--${cli.long}`, bad, 'img'], { IMAGE_FACTORY_CONFIG: '/nonexistent.conf' });
      assert.equal(run.code, 2);
      assert.equal(run.stderr, `image-factory: error: ${badValueMessage(entry, { flag: true }, problem)}\n`);
      assert.equal(badValueMessage(entry, { flag: true }, problem), `--${cli.long}: ${problem}`);
      // The action: the input action.yml declares, and the same words naming it.
      assert.ok(entry.input in actionInputs, `action.yml lacks ${entry.input}`);
      assert.equal(inputError(entry.input, bad), `Input '${entry.input}': ${problem}`);
      // The docs: the row of the key names the flag and the input.
      assert.ok(
        readFileSync(OPTIONS_DOC, 'utf8').includes(`| \`${key}\` | ${flagMarkdown(entry)} | \`${entry.input}\` | `),
        `docs/options.md's row of ${key}`,
      );
    });
  }

  test('stall-timeout takes 0 to turn it off, and says so when a value is wrong; install-timeout refuses 0', () => {
    const stall = optionByKey('stall-timeout') as OptionSpec;
    for (const off of ['0', '0s', '0m']) assert.equal(valueProblem(stall, off), undefined, off);
    assert.equal(valueProblem(stall, '20s'), undefined);
    assert.match(String(valueProblem(stall, 'soon')), /is not a duration; use .*, or 0 to turn it off\.$/);
    assert.match(
      String(valueProblem(optionByKey('install-timeout') as OptionSpec, '0')),
      /is not a duration; use [^,]*\(/,
    );
    const config = new ConfigParser();
    config.read(`${MINIMAL}stall-timeout = 0\n`, CONFIG_FILE);
    const hadSection = applyOverrides(config, 'img', { cache_dir: '/tmp/cache' });
    const context = { outputDir: scratch, date: '2026-01-01', knownImages: ['img'], hadSection, upload: false };
    assert.equal(resolveImageSpec(config, 'img', context).stallTimeoutMs, 0);
  });

  test('the command passes what its flags give into the section under the keys of the table', async () => {
    const config = join(scratch, 'flags.conf');
    writeFileSync(config, MINIMAL);
    const run = await runCli(
      ['--print-config', 'img', '-f', 'qcow2', '--no-installer-logs', '--boot-test', '--compress', 'zstd'],
      {
        IMAGE_FACTORY_CONFIG: config,
      },
    );
    assert.equal(run.code, 0, run.stderr);
    const items = JSON.parse(run.stdout) as Record<string, string>;
    assert.equal(items.format, 'qcow2');
    assert.equal(items['installer-logs'], 'False');
    assert.equal(items['boot-test'], 'True');
    assert.equal(items.compress, 'zstd');
    assert.equal(camelCase('zero-free-space'), 'zeroFreeSpace');
  });
});

describe('configuration errors keep their place', () => {
  test('an interpolation error in cache_dir, met while the overrides are applied, names file and line', () => {
    const config = new ConfigParser();
    config.read('[img]\nlinux = x\ninitrd = y\ncache_dir = ${nowhere}/cache\n', CONFIG_FILE);
    assert.throws(
      () => applyOverrides(config, 'img', {}),
      (error: unknown) =>
        error instanceof UsageError && error.message.startsWith(`${CONFIG_FILE}:4: `) && /nowhere/.test(error.message),
    );
  });

  test('a ConfigError is a UsageError whose message shows its file and line once', () => {
    const bare = new ConfigError('ValueError', 'something is wrong.', { file: '/etc/x.conf', line: 7 });
    assert.ok(bare instanceof UsageError);
    assert.equal(bare.message, '/etc/x.conf:7: something is wrong.');
    const placed = new ConfigError('ValueError', '/etc/x.conf:7: something is wrong.', {
      file: '/etc/x.conf',
      line: 7,
    });
    assert.equal(placed.message, '/etc/x.conf:7: something is wrong.');
    assert.equal(new ConfigError('ValueError', 'nowhere.', { file: '/etc/x.conf' }).message, 'nowhere.');
  });

  test("an override with a stray '$' is bad input, not a crash", () => {
    const config = new ConfigParser();
    config.read(MINIMAL, CONFIG_FILE);
    assert.throws(
      () => applyOverrides(config, 'img', { 'log-filename': 'a$b.log' }),
      (error: unknown) => error instanceof UsageError && /log-filename/.test(error.message),
    );
  });
});

describe('a reader that goes away', () => {
  test('image-factory --help | head -1 ends cleanly', () => {
    const run = spawnSync('sh', ['-c', `"$0" "$1" --help | head -1`, process.execPath, CLI], { encoding: 'utf8' });
    assert.equal(run.status, 0);
    assert.equal(run.stdout, 'Usage: image-factory [options] [image]\n');
    assert.equal(run.stderr, '');
  });

  test('stdout closed before the command writes: exit 0, no EPIPE stack trace', async () => {
    const child = spawn(process.execPath, [CLI, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  test('stderr closed: a usage error still exits 2, not with an unhandled EPIPE', async () => {
    const child = spawn(process.execPath, [CLI, '--colour'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 2);
  });
});
