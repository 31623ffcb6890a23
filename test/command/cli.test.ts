import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { REPO_ROOT } from '../support/fixture.js';
import { runCli } from '../support/run-cli.js';

const UPSTREAM = join(REPO_ROOT, 'test', 'fixtures', 'upstream-image-factory.conf');
const scratch = mkdtempSync(join(tmpdir(), 'cli-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let counter = 0;
/** A folder with one configuration file; returns what a run needs. */
function setup(ini: string, files: Record<string, string> = {}): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = join(scratch, `case-${(counter += 1)}`);
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'image-factory.conf'), ini);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return { dir, env: { IMAGE_FACTORY_CONFIG: join(dir, 'image-factory.conf'), HOME: dir } };
}

function pythonItems(file: string, section: string, sets: Array<[string, string, string]>): Record<string, string> {
  const args = [join(REPO_ROOT, 'test', 'support', 'configparser-reference.py'), file];
  for (const [s, k, v] of sets) args.push('--set', s, k, v);
  const out = JSON.parse(execFileSync('python3', args, { encoding: 'utf8' })) as {
    ok: boolean;
    sections: Record<string, Record<string, string>>;
  };
  assert.ok(out.ok);
  return out.sections[section];
}

const MINIMAL = (extra = ''): string => `[img]\nlinux = /boot/vmlinuz\ninitrd = /boot/initrd.img\n${extra}`;

/** Runs a case that must be rejected before anything is created. */
async function rejected(ini: string, args: string[], files: Record<string, string> = {}): Promise<string> {
  const { dir, env } = setup(ini, files);
  const before = readdirSync(dir).sort();
  const run = await runCli(args, { cwd: dir, env });
  assert.equal(run.code, 2, `expected exit 2, got ${run.code}: ${run.stderr}`);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
  assert.deepEqual(readdirSync(dir).sort(), before, 'nothing was created');
  return run.stderr;
}

describe('image-factory --help', () => {
  test('names every option of the manual and says what the command does', async () => {
    const run = await runCli(['--help']);
    assert.equal(run.code, 0);
    for (const option of [
      '-c, --cache-dir',
      '-f, --format',
      '--image-size',
      '--mac',
      '--installer-logs',
      '--no-installer-logs',
      '--log-file',
      '--no-log-file',
      '--log-filename',
      '--print-config',
      '--dry-run',
      '--accelerator',
      '--install-timeout',
      '--no-upload',
    ]) {
      assert.ok(run.stdout.includes(option), `--help lacks ${option}`);
    }
    assert.match(run.stdout, /golden Linux VM image/);
    assert.match(run.stdout, /Exit codes: 0 built, 1 .*\n.*2 bad input/);
  });
});

describe('--print-config resolves options exactly as the original does', () => {
  test('every section of the original example configuration equals Python configparser items() after overrides', async () => {
    const { env } = setup('');
    env.IMAGE_FACTORY_CONFIG = UPSTREAM;
    const sections = [
      'CentOS-8-server',
      'Debian-10-server',
      'Ubuntu-20.04-LTS-server',
      'Fedora-27-server',
      'openSUSE-13.2-server',
      'upload-host1',
    ];
    for (const section of sections) {
      const run = await runCli(['--print-config', section], { env });
      assert.equal(run.code, 0, run.stderr);
      const expected = pythonItems(UPSTREAM, section, [[section, 'cache_dir', '/var/cache/image-factory']]);
      assert.deepEqual(
        Object.entries(JSON.parse(run.stdout) as Record<string, string>),
        Object.entries(expected),
        section,
      );
    }
  });

  test('command-line options win over the section, written as the original writes them', async () => {
    const { dir, env } = setup(`[DEFAULT]\nformat = qcow2\ninstaller-logs = yes\n${MINIMAL('log-file = yes\n')}`);
    const args = [
      '--print-config',
      'img',
      '-f',
      'raw',
      '--image-size',
      '3 GiB',
      '--mac',
      '52:54:00:aa:bb:cc',
      '--no-installer-logs',
      '--no-log-file',
      '--log-filename',
      'x.log',
      '-c',
      '/srv/cache',
    ];
    const run = await runCli(args, { cwd: dir, env });
    assert.equal(run.code, 0, run.stderr);
    const expected = pythonItems(env.IMAGE_FACTORY_CONFIG as string, 'img', [
      ['img', 'cache_dir', '/srv/cache'],
      ['img', 'mac', '52:54:00:aa:bb:cc'],
      ['img', 'format', 'raw'],
      ['img', 'image-size', '3 GiB'],
      ['img', 'installer-logs', 'False'],
      ['img', 'log-file', 'False'],
      ['img', 'log-filename', 'x.log'],
    ]);
    const ours = JSON.parse(run.stdout) as Record<string, string>;
    delete ours.data_dir;
    assert.deepEqual(ours, expected);
  });

  test('the image may come from the IMAGE environment variable, and cache_dir defaults by user', async () => {
    const { env } = setup(MINIMAL());
    const run = await runCli(['--print-config'], { env: { ...env, IMAGE: 'img' } });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as Record<string, string>).cache_dir, '/var/cache/image-factory');
  });

  test('it does not need the answer file or kernel to exist, so it can debug them', async () => {
    const { env } = setup(MINIMAL('preseed = /nonexistent/answer.cfg\n'));
    const run = await runCli(['--print-config', 'img'], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as Record<string, string>).preseed, '/nonexistent/answer.cfg');
  });

  test('an interpolation that refers to nothing names the file and line', async () => {
    const stderr = await rejected('[img]\nlinux = ${mirror}/linux\ninitrd = x\n', ['--print-config', 'img']);
    assert.match(stderr, /image-factory\.conf:2\b/);
    assert.match(stderr, /mirror/);
  });

  test('an interpolation that refers to itself is rejected', async () => {
    const stderr = await rejected('[img]\nlinux = ${linux}/x\ninitrd = x\n', ['--print-config', 'img']);
    assert.match(stderr, /linux/);
  });

  test('a duplicate key in one file is rejected with its line', async () => {
    const stderr = await rejected('[img]\nram = 1G\nram = 2G\n', ['--print-config', 'img']);
    assert.match(stderr, /:3\b.*ram|ram.*:3\b/);
  });
});

describe('bad input is rejected with exit code 2 before anything is created', () => {
  test('no image given', async () => {
    const stderr = await rejected(MINIMAL(), []);
    assert.match(stderr, /No image specified/);
  });

  test('an unknown image lists the images that exist', async () => {
    const stderr = await rejected(`${MINIMAL()}[other]\nlinux=a\ninitrd=b\n`, ['nope']);
    assert.match(stderr, /No section 'nope'.*Images that exist: img, other/);
  });

  test('IMAGE_FACTORY_CONFIG naming a missing file', async () => {
    const run = await runCli(['img'], { env: { IMAGE_FACTORY_CONFIG: '/nonexistent.conf' } });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /'\/nonexistent.conf' \(set in IMAGE_FACTORY_CONFIG\) is not a readable file/);
  });

  test('missing linux and initrd', async () => {
    const stderr = await rejected('[img]\nram = 1G\n', ['img']);
    assert.match(stderr, /'linux' or 'initrd'.*installer_image/);
  });

  test('an unreadable answer file', async () => {
    const stderr = await rejected(MINIMAL('kickstart = /nonexistent/ks.cfg\n'), ['img']);
    assert.match(stderr, /kickstart: the answer file '\/nonexistent\/ks.cfg' does not exist or is not readable/);
  });

  test('an answer file without read permission', async () => {
    const { dir } = setup('');
    const answer = join(dir, 'secret.cfg');
    writeFileSync(answer, 'x');
    chmodSync(answer, 0o000);
    // root reads anything; the check still runs the same code path as for a missing file.
    if (process.getuid?.() !== 0) {
      const stderr = await rejected(MINIMAL(`preseed = ${answer}\n`), ['img']);
      assert.match(stderr, /not readable/);
    }
  });

  for (const [size, ok] of [
    ['2G', true],
    ['512 MiB', true],
    ['2 GB', true],
    ['2 gigabytes', false],
    ['2g', false],
    ['1.5G', false],
  ] as const) {
    test(`image-size '${size}' is ${ok ? 'accepted' : 'rejected with the accepted forms'}`, async () => {
      if (ok) {
        const { env } = setup(MINIMAL(`image-size = ${size}\n`));
        const run = await runCli(['--dry-run', 'img', '--accelerator', 'tcg'], { env });
        assert.equal(run.code, 0, run.stderr);
      } else {
        const stderr = await rejected(MINIMAL(`image-size = ${size}\n`), ['img']);
        assert.match(stderr, /image-size: '.*' is not a size; use .*MiB.*GB.*2G/);
        assert.match(stderr, /image-factory\.conf:\d+/);
      }
    });
  }

  test('a format other than raw or qcow2', async () => {
    const stderr = await rejected(MINIMAL('format = vdi\n'), ['img']);
    assert.match(stderr, /format: 'vdi' is not one of raw, qcow2, vmdk, vhdx, vhd/);
    const cli = await rejected(MINIMAL(), ['img', '-f', 'vdi']);
    assert.match(
      cli,
      /^image-factory: error: --format: 'vdi' is not one of raw, qcow2, vmdk, vhdx, vhd\.$/m,
      'the same words as the configuration, naming the flag',
    );
  });

  test('a malformed MAC address', async () => {
    const stderr = await rejected(MINIMAL('mac = 52:54:00:zz:00:01\n'), ['img']);
    assert.match(stderr, /mac: '52:54:00:zz:00:01' is not a MAC address/);
    const multicast = await rejected(MINIMAL(), ['img', '--mac', '01:00:5e:00:00:01']);
    assert.match(multicast, /multicast/);
  });

  test('a malformed VNC setting', async () => {
    const stderr = await rejected(MINIMAL('vnc = localhost\n'), ['img']);
    assert.match(stderr, /vnc: 'localhost' is not a VNC display; use LISTEN:DISPLAY/);
  });

  test('an upload destination without a section', async () => {
    const stderr = await rejected(MINIMAL('upload_destinations = host1\n'), ['img']);
    assert.match(stderr, /upload_destinations names 'host1', but there is no section \[host1\]/);
  });

  test('an upload destination without upload_type or upload_target, or of an unknown type', async () => {
    assert.match(
      await rejected(MINIMAL('upload_destinations = d\n[d]\nupload_target = x:/y\n'), ['img']),
      /\[d\] has no 'upload_type'/,
    );
    assert.match(
      await rejected(MINIMAL('upload_destinations = d\n[d]\nupload_type = rsync\n'), ['img']),
      /\[d\] has no 'upload_target'/,
    );
    assert.match(
      await rejected(MINIMAL('upload_destinations = d\n[d]\nupload_type = ftp\nupload_target = x\n'), ['img']),
      /upload_type: unknown type 'ftp'. Supported types: rsync/,
    );
  });

  test('an unknown option', async () => {
    const stderr = await rejected(MINIMAL(), ['img', '--colour']);
    assert.match(stderr, /unknown option '--colour'/);
  });
});

describe('--dry-run', () => {
  test('shows the values the configuration gives: VNC, MAC, cores, memory, cpu, compression', async () => {
    const { dir, env } = setup(
      MINIMAL(
        'vnc = localhost:1\nmac = 52:54:00:12:34:56\ncores = 2\nram = 3G\ncpu = mode=maximum\nformat = qcow2\nosinfo = debian11\n',
      ),
    );
    const run = await runCli(
      ['--dry-run', 'img', '--accelerator', 'tcg', '--compress', 'zstd', '-c', join(dir, 'cache')],
      { cwd: dir, env },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /--graphics vnc,port=5901,listen=localhost /);
    assert.match(run.stderr, /--network user,model=virtio,mac=52:54:00:12:34:56 /);
    assert.match(run.stderr, /--osinfo debian11 .*--vcpus 2 --memory 3072 --cpu mode=maximum /);
    assert.match(run.stderr, /qemu-img convert -p -f raw -O qcow2 -W -c -o compression_type=zstd /);
    assert.match(run.stderr, /Dry run: the commands above were not run, and nothing was created\./);
  });

  test('prints every command in order and runs none', async () => {
    const { dir, env } = setup(
      MINIMAL(
        'preseed = answer.cfg\nformat = qcow2\nappend = console=ttyS0\nupload_destinations = d\n[d]\nupload_type = rsync\nupload_target = rsync://127.0.0.1:1/m/\n',
      ),
      { 'answer.cfg': 'd-i x string y\n' },
    );
    const run = await runCli(['--dry-run', 'img', '--accelerator', 'tcg', '-c', join(dir, 'cache')], { cwd: dir, env });
    assert.equal(run.code, 0, run.stderr);
    const commands = [...run.stderr.matchAll(/Calling (\S+)/g)].map((m) => m[1]);
    const order = ['qemu-img', 'virt-install', 'env', 'guestfish', 'guestfish', 'qemu-img', 'rsync'];
    let at = 0;
    for (const command of commands) if (command === order[at]) at += 1;
    assert.equal(at, order.length, `commands out of order: ${commands.join(' ')}`);
    // What a dry run reports was planned, not seen: every line says so.
    const lines = run.stderr.split('\n').filter((line) => / (INFO|WARNING|ERROR): /.test(line));
    assert.ok(lines.length > 0);
    for (const line of lines) assert.match(line, / image-factory \(dry run\) \[\d+\] (INFO|WARNING|ERROR): /);
    assert.match(run.stderr, /--extra-args 'preseed\/url=file:\/\/\/answer.cfg console=ttyS0'/);
    assert.match(run.stderr, /--initrd-inject \S*answer.cfg/);
    assert.deepEqual(readdirSync(dir).sort(), ['answer.cfg', 'image-factory.conf']);
  });
});
