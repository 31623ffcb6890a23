/**
 * Bad input of every class issue 13 names ends with exit code 2 and a message
 * that says what is accepted, before anything is created; unknown keys are
 * reported; the configuration layer shows no password.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { resolveActionSpec } from '../../src/action/resolve-spec.js';
import { configFiles } from '../../src/config/config-files.js';
import { ConfigParser } from '../../src/config/configparser.js';
import { applyOverrides, resolveImageSpec } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import { firstImage, plannedArtifacts } from '../../src/pipeline/artifacts.js';
import { checkOutputs } from '../../src/pipeline/staging.js';
import { testSpec } from '../support/build-context.js';
import { REPO_ROOT } from '../support/fixture.js';
import { looksLikeCrash, runMain, type InProcessRun } from '../support/in-process-cli.js';

const scratch = mkdtempSync(join(tmpdir(), 'config-hardening-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const out = join(scratch, 'out');
mkdirSync(out);
const kernel = join(scratch, 'vmlinuz');
const initrd = join(scratch, 'initrd');
const preseed = join(scratch, 'preseed.cfg');
for (const file of [kernel, initrd, preseed]) writeFileSync(file, 'x');
const BASE = `[img]\nlinux = ${kernel}\ninitrd = ${initrd}\npreseed = ${preseed}\ncache_dir = ${join(scratch, 'cache')}\n`;

/** BASE with some of its keys given other values (a key may be set once per section). */
function withKeys(keys: Record<string, string>, before = ''): string {
  let text = BASE;
  for (const [key, value] of Object.entries(keys)) {
    text = new RegExp(`^${key} = `, 'm').test(text)
      ? text.replace(new RegExp(`^${key} = .*$`, 'm'), () => `${key} = ${value}`)
      : `${text}${key} = ${value}\n`;
  }
  return `${before}${text}`;
}

let configCount = 0;
/** Write `text` as the only configuration file and run the command on it. */
async function run(text: string, argv: string[]): Promise<InProcessRun & { file: string }> {
  configCount += 1;
  const file = join(scratch, `c${configCount}.conf`);
  writeFileSync(file, text);
  const result = await runMain(['-o', out, ...argv], { IMAGE_FACTORY_CONFIG: file, IMAGE: undefined });
  assert.equal(result.thrown, undefined, `main() threw: ${String(result.thrown)}`);
  assert.ok(!looksLikeCrash(result.stderr), `a crash, not a message:\n${result.stderr}`);
  assert.deepEqual(readdirSync(out), [], 'nothing is created in the output folder');
  return { ...result, file };
}

/** Exit code 2 with a message matching every pattern. */
async function refused(text: string, argv: string[], ...patterns: RegExp[]): Promise<InProcessRun> {
  const result = await run(text, argv);
  assert.equal(result.code, 2, `exit code 2 expected, got ${result.code}:\n${result.stderr}`);
  for (const pattern of patterns) assert.match(result.stderr, pattern);
  return result;
}

async function accepted(text: string, argv: string[]): Promise<InProcessRun> {
  const result = await run(text, argv);
  assert.equal(result.code, 0, `exit code 0 expected, got ${result.code}:\n${result.stderr}`);
  return result;
}

/** The spec of BASE plus `extra`, as the configuration layer resolves it. */
function spec(extra: string, outputDir = out): ReturnType<typeof resolveImageSpec> {
  const config = new ConfigParser();
  config.read(`${BASE}${extra}`, join(scratch, 'spec.conf'));
  const hadSection = applyOverrides(config, 'img', {});
  return resolveImageSpec(config, 'img', { outputDir, date: '2026-01-01', knownImages: [], hadSection, upload: true });
}

describe('4: no input crashes the tool', () => {
  test('the image name DEFAULT is refused, with --print-config, --dry-run and as $IMAGE', async () => {
    await refused(BASE, ['--print-config', 'DEFAULT'], /DEFAULT/, /not an image/);
    await refused(BASE, ['--dry-run', 'DEFAULT'], /DEFAULT/);
  });

  test("a '$' in a command-line value is refused naming the flag", async () => {
    for (const argv of [
      ['--log-filename', 'a$1'],
      ['--mac', '$'],
      ['--cache-dir', '$'],
      ['--image-size', '$'],
      ['--install-timeout', '${x'],
    ]) {
      await refused(BASE, ['--dry-run', ...argv, 'img'], new RegExp(argv[0]));
    }
  });

  test('a file: URI with a bad percent-escape is refused naming the key', async () => {
    for (const uri of ['file:///tmp/%zz', 'file:///tmp/%', 'file:%E0%A4%A']) {
      await refused(withKeys({ linux: uri }), ['--dry-run', 'img'], /linux/, /percent/);
    }
  });

  test('references that fan out are stopped at a bound, naming the key, within a second of CPU time and a few MiB', async () => {
    const fan = (leaf: string): string =>
      `[DEFAULT]\na0 = ${leaf}\n` +
      Array.from({ length: 9 }, (_, i) => `a${i + 1} = ${`\${a${i}}`.repeat(10)}\n`).join('') +
      `${BASE}append = \${a9}\n`;
    for (const text of [fan('x'.repeat(100)), fan(''), fan('$$')]) {
      const heap = process.memoryUsage().heapUsed;
      const result = await refused(text, ['--print-config', 'img'], /key 'a\d'/, /a value may be at most 64 KiB/);
      assert.ok(result.cpuMs < 1000, `took ${result.cpuMs.toFixed(0)} ms of CPU time`);
      assert.ok(process.memoryUsage().heapUsed - heap < 64 * 2 ** 20, 'heap grew by more than 64 MiB');
    }
  });
});

describe('5: values that cannot be what they claim are refused with what is accepted', () => {
  test('durations above what a timer holds (2^31-1 ms) are refused, at every door', async () => {
    await refused(`${BASE}install-timeout = 600h\n`, ['--dry-run', 'img'], /install-timeout/, /at most 596h/);
    await refused(`${BASE}boot-timeout = 2147484s\n`, ['--dry-run', 'img'], /boot-timeout/, /at most/);
    await refused(BASE, ['--dry-run', '--install-timeout', '99999999999999999999', 'img'], /--install-timeout/);
    assert.equal(spec('install-timeout = 596h\n').installTimeoutMs, 596 * 3600 * 1000);
  });

  test('a VNC listen address that injects virt-install sub-options is refused; [::1]:1 works', async () => {
    for (const vnc of ['0.0.0.0,passwd=x,keymap=de:1', 'a=b:1', 'host name:1', '[::1:1'])
      await refused(`${BASE}vnc = ${vnc}\n`, ['--dry-run', 'img'], /vnc/, /LISTEN:DISPLAY/);
    assert.deepEqual(spec('vnc = [::1]:1\n').vnc, { listen: '::1', port: 5901 });
    assert.deepEqual(spec('vnc = 127.0.0.1:2\n').vnc, { listen: '127.0.0.1', port: 5902 });
    const dry = await accepted(`${BASE}vnc = [::1]:1\n`, ['--dry-run', 'img']);
    assert.match(dry.stderr, /vnc,port=5901,listen=::1/);
  });

  test('image names that are not plain file names are refused, with the rule', async () => {
    const names = ['a/b', '../x', '..', '.', '.x', '-x', 'a${b}', 'a$b', 'a{b', 'a b', 'a\tb', 'a\u0007b', 'a\u202eb'];
    // 201 bytes: ASCII, or 101 two-byte letters (under 200 characters, over 200 bytes).
    for (const name of [...names, 'x'.repeat(201), 'ü'.repeat(101), 'a\uff0fb']) {
      const section = `[${name}]\nlinux = ${kernel}\ninitrd = ${initrd}\n`;
      await refused(
        section,
        ['--dry-run', '--', name],
        /is not an image name/,
        /letters and digits \(of any script\), '\.', '_', '\+' and '-', not starting with '\.' or '-'/,
        /at most 200 bytes in UTF-8/,
      );
    }
  });

  test('image names of letters and digits of any script build (dry run)', async () => {
    // Ünïcode precomposed and decomposed (letters with combining marks), Greek, Devanagari, Japanese, Arabic digits.
    const names = [
      'Ünïcode-server',
      'U\u0308ni\u0308code-server',
      'Ελληνικά_1',
      'हिन्दी',
      '日本語+2',
      'img-٤٢',
      'ü'.repeat(100),
    ];
    for (const name of names) {
      const section = `[${name}]\nlinux = ${kernel}\ninitrd = ${initrd}\npreseed = ${preseed}\ncache_dir = ${join(scratch, 'cache')}\n`;
      const dry = await accepted(section, ['--dry-run', '--', name]);
      assert.ok(dry.stderr.includes(`Building image ${name} (`), dry.stderr);
    }
  });

  test('an image name cannot interpolate into post-upload commands', () => {
    const config = new ConfigParser();
    config.read(`${BASE}upload_destinations = d\n[d]\nupload_type = rsync\nupload_target = /x/\n`, 'f.conf');
    config.set('d', 'post-upload-command', 'echo ${image}');
    applyOverrides(config, 'img', {});
    const resolved = resolveImageSpec(config, 'img', {
      outputDir: out,
      date: '2026-01-01',
      knownImages: [],
      hadSection: true,
      upload: true,
    });
    assert.deepEqual(resolved.uploads[0].postUploadCommands('a${b}$c.qcow2'), [['echo', 'a${b}$c.qcow2']]);
  });

  test('cpu and osinfo starting with - are refused', async () => {
    await refused(`${BASE}cpu = -host\n`, ['--dry-run', 'img'], /cpu/);
    await refused(`${BASE}osinfo = --boot\n`, ['--dry-run', 'img'], /osinfo/);
  });

  test("cores beyond the host's cores times 4, and 1e23, are refused", async () => {
    const most = availableParallelism() * 4;
    await refused(`${BASE}cores = 1e23\n`, ['--dry-run', 'img'], /cores/, /not a whole number \(1 or more\)/);
    for (const cores of ['100000000000000000000000', String(most + 1)])
      await refused(`${BASE}cores = ${cores}\n`, ['--dry-run', 'img'], /cores/, new RegExp(`at most ${most}`));
    assert.equal(spec(`cores = ${most}\n`).cores, most);
  });

  test('a disk too small for a partition table is refused', async () => {
    for (const size of ['1B', '512 B', '1 kB', '1023K'])
      await refused(`${BASE}image-size = ${size}\n`, ['--dry-run', 'img'], /image-size/, /at least 1 MiB/);
    await refused(BASE, ['--dry-run', '--image-size', '1K', 'img'], /--image-size/, /at least 1 MiB/);
    assert.equal(spec('image-size = 1M\n').imageSize, 2 ** 20);
  });

  test('an answer file that is a folder or a device is refused', async () => {
    for (const path of [scratch, '/dev/null'])
      await refused(withKeys({ preseed: path }), ['--dry-run', 'img'], /preseed/, /not a regular file/);
  });

  test('-o naming a regular file is refused', async () => {
    await refused(BASE, ['--dry-run', '-o', preseed, 'img'], /output folder/, /not a folder/);
  });

  test('a dangling symlink under a final name is refused', () => {
    const dir = mkdtempSync(join(scratch, 'dangling-'));
    const dangling = testSpec({ outputDir: dir });
    symlinkSync(join(dir, 'nowhere'), firstImage(plannedArtifacts(dangling)).final);
    assert.throws(
      () => checkOutputs(dangling),
      (error: unknown) => error instanceof UsageError && /exists/.test(error.message),
    );
  });

  test('the same upload destination twice is refused', async () => {
    const text = `${BASE}upload_destinations = d, d\n[d]\nupload_type = rsync\nupload_target = /srv/\n`;
    await refused(text, ['--dry-run', 'img'], /upload_destinations/, /twice/);
  });

  test('unsafe upload_args are refused before the build', async () => {
    for (const args of ['--inplace', '-av --append', '--append-verify', '--write-devices=1']) {
      const text = `${BASE}upload_destinations = d\n[d]\nupload_type = rsync\nupload_target = /srv/\nupload_args = ${args}\n`;
      const result = await refused(text, ['--dry-run', 'img'], /\[d\] upload_args/, /final name/);
      assert.doesNotMatch(result.stderr, /== install/, 'refused before the build starts');
    }
  });
});

describe('6: unknown keys are reported', () => {
  test('a misspelt key warns with the closest known key', async () => {
    const cases: Array<[string, string]> = [
      ['preseeed', 'preseed'],
      ['imagesize', 'image-size'],
      ['instal-timeout', 'install-timeout'],
    ];
    for (const [typo, meant] of cases) {
      const result = await accepted(`${BASE}${typo} = 1\n`, ['--print-config', 'img']);
      assert.match(result.stderr, new RegExp(`warning: .*c\\d+\\.conf:6: \\[img\\] unknown key '${typo}'`));
      assert.match(result.stderr, new RegExp(`did you mean '${meant}'\\?`));
    }
  });

  test('keys of [DEFAULT] that nothing uses warn; keys a value references do not', async () => {
    const text = `[DEFAULT]\ndebian_mirror = http://deb\nstray = 1\n${BASE}append = url=\${debian_mirror}/x\n`;
    const result = await accepted(text, ['--dry-run', 'img']);
    assert.match(result.stderr, /\[DEFAULT\] unknown key 'stray'/);
    assert.doesNotMatch(result.stderr, /debian_mirror/);
  });

  test('strict = true and --strict make an unknown key an error', async () => {
    await refused(`${BASE}preseeed = 1\nstrict = true\n`, ['--dry-run', 'img'], /unknown key 'preseeed'/);
    await refused(`${BASE}preseeed = 1\n`, ['--print-config', '--strict', 'img'], /unknown key 'preseeed'/);
  });

  test('the action warns of an unknown key in config-text, naming the input and the line', () => {
    const warnings: string[] = [];
    resolveActionSpec(
      {
        image: 'img',
        overrides: {},
        configText: `${BASE}instal-timeout = 3h\n`,
        installDependencies: false,
        upload: false,
        outputDir: out,
      },
      (message) => warnings.push(message),
    );
    assert.deepEqual(warnings, [
      "Input 'config-text':6: [img] unknown key 'instal-timeout': no option and no reference uses it; did you mean 'install-timeout'?",
    ]);
  });

  test('the shipped definitions have no unknown key', async () => {
    const shipped = join(REPO_ROOT, 'data', 'image-factory.conf');
    const config = new ConfigParser();
    config.read(await import('node:fs').then((fs) => fs.readFileSync(shipped, 'utf8')), shipped);
    for (const image of config.sections().filter((name) => config.hasOption(name, 'linux'))) {
      const result = await runMain(['--print-config', image], { IMAGE_FACTORY_CONFIG: shipped });
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /unknown key/, image);
    }
  });
});

describe('7: the configuration layer shows no password', () => {
  const uri = 'https://user:s3cr@t/x@mirror.example/linux';
  test('--print-config masks passwords unless --show-secrets', async () => {
    const text = withKeys({ linux: uri, initrd: 'https://u:${pw}@mirror.example/initrd' }, '[DEFAULT]\npw = hunter2\n');
    const masked = await accepted(text, ['--print-config', 'img']);
    assert.doesNotMatch(masked.stdout, /s3cr|hunter2/);
    assert.match(masked.stdout, /https:\/\/user:\*\*\*@mirror\.example\/linux/);
    const shown = await accepted(text, ['--print-config', '--show-secrets', 'img']);
    assert.match(shown.stdout, /s3cr@t\/x@mirror/);
    assert.match(shown.stdout, /hunter2/);
  });

  test('interpolation errors do not quote a password', async () => {
    for (const value of [`${uri}/\${missing}`, `${uri}/$x`, `rsync://u:pa/ss@host/\${nope:x}`]) {
      const result = await refused(withKeys({ linux: value }), ['--dry-run', 'img'], /linux/);
      assert.doesNotMatch(result.stderr, /s3cr|pa\/ss/);
    }
  });
});

describe('8: messages that help', () => {
  test('a configuration file that is a folder is an error naming it', () => {
    const home = mkdtempSync(join(scratch, 'home-'));
    mkdirSync(join(home, '.config', 'image-factory.conf'), { recursive: true });
    assert.throws(
      () => configFiles({ env: {}, home }),
      (error: unknown) =>
        error instanceof UsageError && error.message.includes(join(home, '.config', 'image-factory.conf')),
    );
  });

  test('a configuration file that cannot be read (mode 000) is an error naming it', () => {
    const home = mkdtempSync(join(scratch, 'home-'));
    mkdirSync(join(home, '.config'));
    const file = join(home, '.config', 'image-factory.conf');
    writeFileSync(file, BASE);
    chmodSync(file, 0);
    chmodSync(scratch, 0o755);
    chmodSync(home, 0o755);
    chmodSync(join(home, '.config'), 0o755);
    const module = join(REPO_ROOT, 'build', 'src', 'config', 'config-files.js');
    const script =
      `import(${JSON.stringify(module)}).then((m) => { try { m.configFiles({ env: {}, home: ${JSON.stringify(home)} });` +
      ` console.log('read'); } catch (e) { console.log(e.name + ': ' + e.message); } });`;
    // Root reads any file: run the check as nobody there.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', ...asNobody });
    assert.match(child.stdout, new RegExp(`UsageError: .*${file.replace(/[.]/g, '\\.')}.*permission denied`, 'i'));
  });

  test('errors in config-text cite the input, not a temporary file', () => {
    assert.throws(
      () =>
        resolveActionSpec({
          image: 'img',
          overrides: {},
          configFile: undefined,
          configText: `${BASE}format = vdi`,
          installDependencies: false,
          upload: false,
          outputDir: out,
        }),
      (error: unknown) =>
        error instanceof UsageError &&
        error.message.startsWith("Input 'config-text':6: [img] format: 'vdi'") &&
        !error.message.includes(tmpdir()),
    );
  });

  test('a size that is only too large says so', async () => {
    await refused(`${BASE}image-size = 99999999999P\n`, ['--dry-run', 'img'], /image-size/, /too large/);
    await refused(`${BASE}ram = 99999999999999999999G\n`, ['--dry-run', 'img'], /ram/, /too large/);
  });

  test('an unknown image lists at most a screenful of known images, the closest first', async () => {
    const text = Array.from({ length: 60 }, (_, i) => `[Debian-${i}-server]\nlinux = x\ninitrd = y\n`).join('');
    const result = await refused(text, ['--dry-run', 'Debian-42-sever'], /No section 'Debian-42-sever'/);
    const listed = /Images that exist[^:]*: (.*)/.exec(result.stderr)?.[1] ?? '';
    const names = listed.split(/, | and /).filter((name) => name.startsWith('Debian-'));
    assert.ok(names.length <= 20 && names.length >= 5, listed);
    assert.match(names[0], /^Debian-42-server/);
    assert.match(result.stderr, /40 more/);
  });
});
