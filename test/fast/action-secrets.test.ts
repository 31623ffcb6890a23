import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ActionInputs } from '../../src/action/inputs.js';
import { inputSecrets } from '../../src/action/secrets.js';
import type { Overrides } from '../../src/config/options.js';

const work = mkdtempSync(join(tmpdir(), 'action-secrets-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('the passwords of every URI in the raw inputs and config files are found before anything is resolved', () => {
  const configFile = join(work, 'image-factory.conf');
  writeFileSync(configFile, '[DEFAULT]\nmirror = https://mirror:fi1e-pass@deb.example/debian\n');
  const inputs: ActionInputs = {
    image: 'img',
    overrides: { linux: 'http://user:ov%2Fer@host/vmlinuz', 'log-file': true } as unknown as Overrides,
    configFile,
    configText: '[img]\nupload_target = rsync://up:t3xt-p@ss@host/m/\nbroken = ${nowhere}\n',
    installDependencies: false,
    upload: true,
    outputDir: work,
  };
  const secrets = inputSecrets(inputs);
  for (const secret of ['fi1e-pass', 'ov%2Fer', 'ov/er', 't3xt-p@ss']) assert.ok(secrets.includes(secret), secret);
  assert.ok(!secrets.some((secret) => /host|mirror|deb\.example|^up$|^user$/.test(secret)), secrets.join(' '));
});
