import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigParser } from '../../src/config/configparser.js';
import { resolveImageSpec, type ImageSpec } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import { credentialsFromCloud, credentialsFromEnv, tokenRequest, tokensUrl } from '../../src/net/keystone.js';
import { imageProperties } from '../../src/pipeline/upload-glance.js';

const work = mkdtempSync(join(tmpdir(), 'glance-destination-'));
after(() => rmSync(work, { recursive: true, force: true }));
const installer = join(work, 'installer.iso');
writeFileSync(installer, '');

/** The spec of `[img]` with `lines` added to it and `cloud` as its destination section; the warnings. */
function resolve(image: string[], cloud: string[]): { spec: ImageSpec; warnings: string[] } {
  const config = new ConfigParser();
  const text = [
    '[img]',
    `installer_image = ${installer}`,
    'upload_destinations = cloud',
    ...image,
    '[cloud]',
    ...(cloud.some((line) => line.startsWith('upload_type')) ? [] : ['upload_type = glance']),
    ...cloud,
    '',
  ].join('\n');
  config.read(text, join(work, 'image.conf'));
  const warnings: string[] = [];
  const spec = resolveImageSpec(config, 'img', {
    outputDir: work,
    date: '2026-01-01',
    knownImages: ['img'],
    hadSection: true,
    upload: true,
    warn: (message) => warnings.push(message),
  });
  return { spec, warnings };
}

const refused = (pattern: RegExp) => (error: unknown) => error instanceof UsageError && pattern.test(error.message);

describe('a glance destination in the configuration', () => {
  test('defaults: private, no tags, no extra properties, never replace; its keys are known; ${reference} reaches commands', () => {
    const { spec, warnings } = resolve(
      [],
      ['upload_target = https://image.example.org:9292/', 'post-upload-command = register ${image} ${reference}'],
    );
    const [destination] = spec.uploads;
    assert.equal(destination.type, 'glance');
    assert.equal(destination.target, 'https://image.example.org:9292');
    assert.deepEqual(destination.glance, {
      name: undefined,
      visibility: 'private',
      tags: [],
      properties: {},
      replace: false,
      cloud: undefined,
    });
    assert.deepEqual(destination.postUploadCommands('img-2026-01-01.qcow2', 'a-b-c'), [
      ['register', 'img-2026-01-01.qcow2', 'a-b-c'],
    ]);
    assert.deepEqual(warnings, []);
  });

  test('glance-name, visibility, tags (commas or lines), properties (a line each) and replace', () => {
    const { spec } = resolve(
      [],
      [
        'upload_target = http://127.0.0.1:9292',
        'glance-name = Debian 12',
        'glance-visibility = public',
        'glance-tags = golden, nightly',
        '    weekly',
        'glance-properties =',
        '    hw_disk_bus = scsi',
        '    hw_scsi_model=virtio-scsi',
        'glance-replace = yes',
      ],
    );
    assert.deepEqual(spec.uploads[0].glance, {
      name: 'Debian 12',
      visibility: 'public',
      tags: ['golden', 'nightly', 'weekly'],
      properties: { hw_disk_bus: 'scsi', hw_scsi_model: 'virtio-scsi' },
      replace: true,
      cloud: undefined,
    });
  });

  test('bad input names the key and its line', () => {
    assert.throws(
      () => resolve([], []),
      refused(/\[cloud\] has no 'upload_target': a glance destination needs its endpoint/),
    );
    assert.throws(
      () => resolve([], ['upload_target = rsync://host/images']),
      refused(/image\.conf:6: \[cloud\] upload_target: 'rsync:\/\/host\/images' is not an http\(s\) URL/),
    );
    assert.throws(
      () => resolve([], ['upload_target = https://user:pw@glance']),
      refused(/holds a user or password; Glance's credentials come from the OS_\* variables/),
    );
    assert.throws(
      () => resolve([], ['upload_target = https://glance', 'glance-replace = maybe']),
      refused(/image\.conf:7: \[cloud\] glance-replace: 'maybe' is not a boolean/),
    );
    assert.throws(
      () => resolve([], ['upload_target = https://glance', 'glance-properties =', '    no equals sign']),
      refused(/glance-properties: 'no equals sign' is not a property; write one 'key = value' a line/),
    );
    assert.throws(
      () => resolve([], ['upload_type = ftp', 'upload_target = https://glance']),
      refused(/unknown type 'ftp'. Supported types: rsync, oci, glance/),
    );
  });
});

describe('the properties an image gets in Glance', () => {
  const settings = { visibility: 'private' as const, tags: [], properties: {}, replace: false };
  const file = { path: '/x.qcow2', format: 'qcow2' as const, osRelease: { ID: 'opensuse-leap', VERSION_ID: '15.6' } };
  const spec = (more: Partial<ImageSpec>): ImageSpec => ({
    ...resolve([], ['upload_target = https://g']).spec,
    ...more,
  });

  test('BIOS on x86_64: architecture and the distribution only', () => {
    assert.deepEqual(imageProperties(spec({ firmware: 'bios' }), file, settings), {
      architecture: 'x86_64',
      os_distro: 'opensuse',
      os_version: '15.6',
    });
  });

  test('UEFI Secure Boot on x86_64: uefi, q35, Secure Boot required; glance-properties win', () => {
    assert.deepEqual(
      imageProperties(spec({ firmware: 'uefi-secure' }), file, { ...settings, properties: { os_version: '15' } }),
      {
        architecture: 'x86_64',
        os_distro: 'opensuse',
        os_version: '15',
        hw_firmware_type: 'uefi',
        hw_machine_type: 'q35',
        os_secure_boot: 'required',
      },
    );
  });

  test('aarch64: the virt machine', () => {
    const properties = imageProperties(
      spec({ arch: 'aarch64', firmware: 'uefi' }),
      { ...file, osRelease: {} },
      settings,
    );
    assert.deepEqual(properties, { architecture: 'aarch64', hw_firmware_type: 'uefi', hw_machine_type: 'virt' });
  });
});

describe('Keystone credentials from the OS_* variables', () => {
  test('none without OS_AUTH_URL: a service without Keystone', () => {
    assert.equal(credentialsFromEnv({ OS_USERNAME: 'u', OS_PASSWORD: 'p' }), undefined);
  });

  test('a password scoped to a project, domains defaulting to Default', () => {
    const credentials = credentialsFromEnv({
      OS_AUTH_URL: 'https://keystone.example.org:5000/v3/',
      OS_USERNAME: 'builder',
      OS_PASSWORD: 'pw',
      OS_PROJECT_NAME: 'images',
    });
    assert.ok(credentials);
    assert.equal(tokensUrl(credentials.authUrl), 'https://keystone.example.org:5000/v3/auth/tokens');
    assert.deepEqual(tokenRequest(credentials), {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'builder', domain: { name: 'Default' }, password: 'pw' } },
        },
        scope: { project: { name: 'images', domain: { name: 'Default' } } },
      },
    });
  });

  test('an application credential wins over a password', () => {
    const credentials = credentialsFromEnv({
      OS_AUTH_URL: 'https://keystone:5000',
      OS_USERNAME: 'builder',
      OS_PASSWORD: 'pw',
      OS_APPLICATION_CREDENTIAL_ID: 'id1',
      OS_APPLICATION_CREDENTIAL_SECRET: 'secret1',
    });
    assert.ok(credentials);
    assert.equal(tokensUrl(credentials.authUrl), 'https://keystone:5000/v3/auth/tokens');
    assert.deepEqual(tokenRequest(credentials), {
      auth: {
        identity: { methods: ['application_credential'], application_credential: { id: 'id1', secret: 'secret1' } },
      },
    });
  });

  test('OS_AUTH_URL without a user or password says what is missing', () => {
    assert.throws(() => credentialsFromEnv({ OS_AUTH_URL: 'https://k', OS_USERNAME: 'u' }), /OS_PASSWORD is not/);
  });
});

describe('Keystone credentials from clouds.yaml (glance-cloud)', () => {
  const file = join(work, 'clouds.yaml');
  writeFileSync(
    file,
    [
      'clouds:',
      '  prod:',
      '    auth:',
      '      auth_url: https://keystone.example.org:5000',
      '      username: builder',
      '      password: "pw: with colon"',
      '      project_name: images',
      '      user_domain_name: Users',
      '  ci:',
      '    auth_type: v3applicationcredential',
      '    auth:',
      '      auth_url: https://keystone.example.org:5000/v3',
      '      application_credential_id: abc',
      '      application_credential_secret: s3cret',
      '',
    ].join('\n'),
  );

  test('a password entry and an application credential entry', () => {
    assert.deepEqual(credentialsFromCloud('prod', [join(work, 'missing.yaml'), file]), {
      method: 'password',
      authUrl: 'https://keystone.example.org:5000',
      username: 'builder',
      password: 'pw: with colon',
      userDomain: 'Users',
      projectName: 'images',
      projectDomain: 'Default',
    });
    assert.deepEqual(credentialsFromCloud('ci', [file]), {
      method: 'application_credential',
      authUrl: 'https://keystone.example.org:5000/v3',
      id: 'abc',
      secret: 's3cret',
    });
  });

  test('an entry no file has says where it looked', () => {
    assert.throws(
      () => credentialsFromCloud('staging', [file]),
      /no cloud named staging in clouds\.yaml \(looked in .*clouds\.yaml\)/,
    );
  });
});
