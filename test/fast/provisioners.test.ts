/**
 * Provisioners and the boot test's commands: every line parsed, named by the
 * file and line it was written on, and bad input refused with exit 2 before
 * anything is created.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Input } from '../../src/action/constants.js';
import { readInputs } from '../../src/action/inputs.js';
import { ConfigParser } from '../../src/config/configparser.js';
import { applyOverrides, resolveImageSpec, type ImageSpec } from '../../src/config/image-spec.js';
import { checkAnsible, splitWords, valueLines } from '../../src/config/provisioners.js';
import { provisioningInputs } from '../../src/pipeline/provision-inputs.js';
import { UsageError } from '../../src/config/usage-error.js';
import { looksLikeCrash, runMain } from '../support/in-process-cli.js';

const scratch = mkdtempSync(join(tmpdir(), 'provisioners-'));
// Relative paths start at the working folder, as answer files' do.
const cwd = process.cwd();
process.chdir(scratch);
after(() => {
  process.chdir(cwd);
  rmSync(scratch, { recursive: true, force: true });
});
const out = join(scratch, 'out');
mkdirSync(out);
const files = Object.fromEntries(
  ['vmlinuz', 'initrd', 'preseed.cfg', 'setup.sh', 'site.yml', 'motd'].map((name) => [name, join(scratch, name)]),
);
for (const file of Object.values(files)) writeFileSync(file, 'x');
mkdirSync(join(scratch, 'tree'));
const BASE =
  `[img]\nlinux = ${files.vmlinuz}\ninitrd = ${files.initrd}\npreseed = ${files['preseed.cfg']}\n` +
  `cache_dir = ${join(scratch, 'cache')}\n`;

function spec(extra: string, file = join(scratch, 'spec.conf')): ImageSpec {
  const config = new ConfigParser();
  config.read(`${BASE}${extra}`, file);
  const hadSection = applyOverrides(config, 'img', {});
  return resolveImageSpec(config, 'img', {
    outputDir: out,
    date: '2026-01-01',
    knownImages: [],
    hadSection,
    upload: true,
  });
}

function refusedSpec(extra: string, ...patterns: RegExp[]): void {
  assert.throws(
    () => spec(extra),
    (error: unknown) => {
      assert.ok(error instanceof UsageError, String(error));
      for (const pattern of patterns) assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('provision lines', () => {
  test('each kind, in order, each line named by its own line of the file (comments and blank lines skipped)', () => {
    const { provision } = spec(
      [
        'provision = file tree /opt/tree',
        `    script ${files['setup.sh']} --fast "two words"`,
        '    # a comment inside the value',
        '',
        '    shell echo $$HOME > /root/home',
        `    ansible ${files['site.yml']} -e x=1`,
        'provision-env = GREETING=hello world',
        '    secret TOKEN=s3cr=et',
        '',
      ].join('\n'),
    );
    assert.ok(provision);
    const [file, script, shell, ansible] = provision.provisioners;
    assert.deepEqual(
      provision.provisioners.map((p) => [p.kind, p.where]),
      [
        ['file', `${join(scratch, 'spec.conf')}:6: [img] provision`],
        ['script', `${join(scratch, 'spec.conf')}:7: [img] provision`],
        ['shell', `${join(scratch, 'spec.conf')}:10: [img] provision`],
        ['ansible', `${join(scratch, 'spec.conf')}:11: [img] provision`],
      ],
    );
    assert.ok(file.kind === 'file' && file.source === join(scratch, 'tree') && file.dest === '/opt/tree');
    assert.ok(script.kind === 'script' && script.path === files['setup.sh']);
    assert.deepEqual(script.args, ['--fast', 'two words']);
    assert.ok(shell.kind === 'shell' && shell.command === 'echo $HOME > /root/home');
    assert.ok(ansible.kind === 'ansible' && ansible.playbook === files['site.yml']);
    assert.deepEqual(ansible.options, ['-e', 'x=1']);
    assert.deepEqual(provision.env, [
      { name: 'GREETING', value: 'hello world', secret: false },
      { name: 'TOKEN', value: 's3cr=et', secret: true },
    ]);
    assert.equal(provision.timeoutMs, 30 * 60_000);
  });

  test('each line keeps its own number when blank lines follow the value, as at the end of a file', () => {
    const { provision } = spec(['provision = shell true', '    shell false', '', '', ''].join('\n'));
    assert.deepEqual(
      provision?.provisioners.map((p) => p.where),
      [`${join(scratch, 'spec.conf')}:6: [img] provision`, `${join(scratch, 'spec.conf')}:7: [img] provision`],
    );
  });

  test('no provision key: no provisioners', () => {
    assert.deepEqual(spec('').provision?.provisioners, []);
  });

  test('bad lines are refused naming the file, the line, what was written and what is accepted', () => {
    const at = (line: number): RegExp => new RegExp(`spec\\.conf:${line}: \\[img\\] provision: `);
    refusedSpec(
      'provision = shell true\n    copy a b\n',
      at(7),
      /'copy' is not a kind of provisioner/,
      /file SRC DEST/,
    );
    refusedSpec('provision = file motd etc/motd\n', at(6), /'etc\/motd' is not an absolute path in the image/);
    refusedSpec('provision = file missing /etc/x\n', at(6), /the source '.*missing' does not exist/);
    refusedSpec('provision = file motd\n', at(6), /file needs a source .* and an absolute destination/);
    refusedSpec('provision = script nothere.sh\n', at(6), /the script '.*nothere\.sh' does not exist/);
    refusedSpec('provision = script tree\n', at(6), /the script '.*tree' does not exist or is not readable/);
    refusedSpec('provision = ansible gone.yml\n', at(6), /the playbook '.*gone\.yml' does not exist/);
    refusedSpec('provision = shell\n', at(6), /shell needs a command line/);
    refusedSpec("provision = shell 'unclosed\n", at(6), /a quote is not closed/);
    refusedSpec(
      'provision-env = 1X=2\n',
      /spec\.conf:6: \[img\] provision-env: the line starting '1X' is not a variable/,
    );
    refusedSpec('provision-timeout = soon\n', /provision-timeout/);
  });

  test('a bad secret variable does not show its value', () => {
    assert.throws(
      () => spec('provision-env = secret TOKEN hunter2\n'),
      (error: unknown) => error instanceof UsageError && !error.message.includes('hunter2'),
    );
  });

  test('ansible on a host with neither ansible-playbook nor a package manager is refused', () => {
    const line = { text: 'ansible site.yml', where: 'c:1: [img] provision' };
    const empty = mkdtempSync(join(scratch, 'path-'));
    assert.throws(() => checkAnsible(line, empty), /neither apt-get nor dnf/);
    writeFileSync(join(empty, 'apt-get'), '', { mode: 0o755 });
    assert.doesNotThrow(() => checkAnsible(line, empty));
  });
});

describe("the provisioning's inputs in the manifest (skip-unchanged compares them)", () => {
  const lines = [
    'provision = file inputs-tree /opt/tree',
    `    script ${files['setup.sh']}`,
    '    shell true',
    'provision-env = GREETING=hello',
    '    secret TOKEN=first-secret',
    '',
  ].join('\n');
  mkdirSync(join(scratch, 'inputs-tree', 'sub'), { recursive: true });
  writeFileSync(join(scratch, 'inputs-tree', 'sub', 'a.conf'), 'one');
  // A link out of the tree: its target text is hashed, never what it points at.
  symlinkSync('/etc/shadow', join(scratch, 'inputs-tree', 'outside'));
  const digests = async (text = lines) =>
    (await provisioningInputs(spec(text).provision)).map((input) => [input.role, input.name, input.sha256]);

  test('one entry per provisioner, named by its line, and one for the variables; none without provisioners', async () => {
    const inputs = await digests();
    assert.deepEqual(
      inputs.map(([role, name]) => [role, name]),
      [
        ['provisioning', 'file inputs-tree /opt/tree'],
        ['provisioning', `script ${files['setup.sh']}`],
        ['provisioning', 'shell true'],
        ['provisioning', 'provision-env'],
      ],
    );
    for (const [, , sha256] of inputs) assert.match(sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(await provisioningInputs(spec('').provision), []);
    assert.deepEqual(await digests(), inputs, 'the same inputs give the same digests');
  });

  test("a file inside a folder, a script's content or a variable changes its entry's digest, and only that", async () => {
    const before = await digests();
    writeFileSync(join(scratch, 'inputs-tree', 'sub', 'a.conf'), 'two');
    writeFileSync(files['setup.sh'], 'y');
    const after = await digests(lines.replace('GREETING=hello', 'GREETING=bye'));
    writeFileSync(files['setup.sh'], 'x');
    assert.notEqual(after[0][2], before[0][2], 'a file in the folder changed');
    assert.notEqual(after[1][2], before[1][2], 'the script changed');
    assert.equal(after[2][2], before[2][2], 'the shell line did not change');
    assert.notEqual(after[3][2], before[3][2], 'a variable changed');
  });

  test("a secret's value is not hashed: changing it changes nothing in the manifest", async () => {
    const before = await digests();
    const after = await digests(lines.replace('first-secret', 'second-secret'));
    assert.deepEqual(after, before);
  });
});

describe('boot-test commands', () => {
  test('one command a line, each named by its line', () => {
    const { bootTest } = spec(
      'boot-test = yes\nboot-test-command = systemctl is-system-running --wait\n    test -f /etc/motd\n',
    );
    assert.deepEqual(
      bootTest.commands?.map((command) => [command.text, command.where]),
      [
        ['systemctl is-system-running --wait', `${join(scratch, 'spec.conf')}:7: [img] boot-test-command`],
        ['test -f /etc/motd', `${join(scratch, 'spec.conf')}:8: [img] boot-test-command`],
      ],
    );
  });

  test('without the boot test, or without cloud-init, they are refused', () => {
    refusedSpec('boot-test-command = true\n', /boot-test-command: runs during the boot test, which is off/);
    refusedSpec('boot-test = yes\nboot-test-cloud-init = no\nboot-test-command = true\n', /boot-test-cloud-init = yes/);
    refusedSpec(
      'boot-test = yes\nboot-test-playbook = /nonexistent.yml\n',
      /the playbook '\/nonexistent\.yml' does not exist/,
    );
  });
});

describe('the doors', () => {
  test('--provision is repeatable, each use a line; a bad one exits 2 before anything is created', async () => {
    const config = join(scratch, 'door.conf');
    writeFileSync(config, BASE);
    const result = await runMain(
      ['-o', out, '--dry-run', '--provision', 'shell true', '--provision', 'run this', 'img'],
      { IMAGE_FACTORY_CONFIG: config, IMAGE: undefined },
    );
    assert.ok(!looksLikeCrash(result.stderr), result.stderr);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /\[img\] provision, line 2: 'run this': 'run' is not a kind of provisioner/);
    assert.deepEqual(readdirSync(out), []);
  });

  test("the action's provision input passes its lines on", () => {
    const values: Partial<Record<Input, string>> = {
      [Input.Image]: 'img',
      [Input.InstallDependencies]: 'true',
      [Input.Upload]: 'true',
      [Input.OutputDir]: out,
      [Input.Provision]: 'shell true\nshell false\n',
      [Input.BootTestCommand]: 'true\n',
    };
    const inputs = readInputs((name) => values[name] ?? '');
    assert.equal(inputs.overrides.provision, 'shell true\nshell false');
    assert.equal(inputs.overrides['boot-test-command'], 'true');
  });
});

describe('words', () => {
  test('split as a shell splits them', () => {
    assert.deepEqual(splitWords(`a 'b c' "d \\"e\\"" f\\ g h"i"j`), ['a', 'b c', 'd "e"', 'f g', 'hij']);
    assert.equal(splitWords('"open'), undefined);
    assert.deepEqual(
      valueLines('a\n\nb', undefined, 'k').map((line) => line.where),
      ['k, line 1', 'k, line 3'],
    );
  });
});
