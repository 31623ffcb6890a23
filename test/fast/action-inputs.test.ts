import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Input } from '../../src/action/constants.js';
import { optionalBoolean, readInputs, requiredBoolean, type InputReader } from '../../src/action/inputs.js';
import { UsageError } from '../../src/config/usage-error.js';

/** What the runner would pass: action.yml's defaults, then the given inputs. */
function inputs(given: Partial<Record<Input, string>>): InputReader {
  const values: Partial<Record<Input, string>> = {
    [Input.InstallDependencies]: 'true',
    [Input.Upload]: 'true',
    [Input.OutputDir]: '/tmp',
    ...given,
  };
  return (name) => values[name] ?? '';
}

const scratch = mkdtempSync(join(tmpdir(), 'action-inputs-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('action inputs', () => {
  test('booleans accept the YAML 1.2 core schema words, as core.getBooleanInput does', () => {
    for (const word of ['true', 'True', 'TRUE'])
      assert.equal(optionalBoolean(Input.InstallerLogs, inputs({ [Input.InstallerLogs]: word })), true);
    for (const word of ['false', 'False', 'FALSE'])
      assert.equal(optionalBoolean(Input.InstallerLogs, inputs({ [Input.InstallerLogs]: word })), false);
    assert.equal(optionalBoolean(Input.InstallerLogs, inputs({})), undefined, 'empty leaves it to the configuration');
  });

  test('a boolean that is not one says which input and what is accepted', () => {
    for (const word of ['yes', '1', 'on', 'tru']) {
      assert.throws(
        () => requiredBoolean(Input.Upload, inputs({ [Input.Upload]: word })),
        (error: unknown) =>
          error instanceof UsageError &&
          error.message ===
            `Input 'upload': '${word}' is not a boolean; use true or false (YAML 1.2 core schema: true, True, TRUE, false, False, FALSE).`,
      );
    }
  });

  test('choices, sizes and durations are checked with a message naming the input', () => {
    const cases: Array<[Partial<Record<Input, string>>, RegExp]> = [
      [{ [Input.Format]: 'vdi' }, /^Input 'format': 'vdi' is not one of raw, qcow2, vmdk, vhdx, vhd\.$/],
      [{ [Input.Accelerator]: 'hvf' }, /^Input 'accelerator': 'hvf' is not one of auto, kvm, tcg\.$/],
      [{ [Input.Firmware]: 'efi' }, /^Input 'firmware': 'efi' is not one of bios, uefi, uefi-secure\.$/],
      [
        { [Input.ZeroFreeSpace]: 'fstrim' },
        /^Input 'zero-free-space': 'fstrim' is not one of discard, zerofree, none\.$/,
      ],
      [{ [Input.Compress]: 'xz' }, /^Input 'compress': 'xz' is not one of none, zlib, zstd\.$/],
      [{ [Input.ImageSize]: 'big' }, /^Input 'image-size': 'big' is not a size; use a whole number with a unit/],
      [{ [Input.InstallTimeout]: 'soon' }, /^Input 'install-timeout': 'soon' is not a duration; use seconds/],
      [{ [Input.Mac]: '52:54:00:zz:00:01' }, /^Input 'mac': '52:54:00:zz:00:01' is not a MAC address/],
      [{ [Input.Config]: join(scratch, 'missing.conf') }, /^Input 'config': '.*missing\.conf' is not a readable file/],
      [{ [Input.Image]: '' }, /^Input 'image' is required and was not given\.$/],
    ];
    for (const [given, message] of cases) {
      assert.throws(
        () => readInputs(inputs({ [Input.Image]: 'Debian-12-server', ...given })),
        (error: unknown) => error instanceof UsageError && message.test(error.message),
      );
    }
  });

  test('inputs become the same overrides as the command-line options; empty ones are left to the configuration', () => {
    const config = join(scratch, 'extra.conf');
    writeFileSync(config, '[x]\n');
    const read = readInputs(
      inputs({
        [Input.Image]: 'Debian-12-server',
        [Input.Format]: 'qcow2',
        [Input.ImageSize]: '4 GiB',
        [Input.InstallerLogs]: 'false',
        [Input.InstallTimeout]: '90m',
        [Input.StallTimeout]: '0',
        [Input.CacheDir]: '/srv/cache',
        [Input.Config]: config,
        [Input.ConfigText]: '[Debian-12-server]\nram = 2G',
        [Input.Upload]: 'false',
        [Input.BootTest]: 'true',
        [Input.Firmware]: 'uefi',
      }),
    );
    assert.deepEqual(read, {
      image: 'Debian-12-server',
      overrides: {
        cache_dir: '/srv/cache',
        format: 'qcow2',
        'image-size': '4 GiB',
        mac: undefined,
        'installer-logs': false,
        'log-file': undefined,
        'log-filename': undefined,
        accelerator: undefined,
        arch: undefined,
        firmware: 'uefi',
        'install-timeout': '90m',
        'stall-timeout': '0',
        'zero-free-space': undefined,
        generalize: undefined,
        'previous-manifest': undefined,
        'previous-metrics': undefined,
        'skip-unchanged': undefined,
        compress: undefined,
        'boot-test': true,
        provision: undefined,
        'provision-timeout': undefined,
        'boot-test-command': undefined,
        'boot-test-playbook': undefined,
      },
      configFile: config,
      configText: '[Debian-12-server]\nram = 2G',
      installDependencies: true,
      upload: false,
      outputDir: '/tmp',
      signingKey: undefined,
      signingPassphrase: undefined,
    });
  });
});
