import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/config-files.js';
import { applyOverrides, localDate, resolveImageSpec, type ImageSpec } from '../config/image-spec.js';
import type { ActionInputs } from './inputs.js';

/**
 * The image's settings as the command line would resolve them, plus the
 * action's own files read last (later wins): the `config` file, then the
 * `config-text` written to a temporary file that is removed once read.
 */
export function resolveActionSpec(inputs: ActionInputs): ImageSpec {
  const tempDir =
    inputs.configText === undefined
      ? undefined
      : mkdtempSync(join(process.env.RUNNER_TEMP || tmpdir(), 'config-text-'));
  try {
    const extraFiles: string[] = [];
    if (inputs.configFile) extraFiles.push(inputs.configFile);
    if (tempDir !== undefined) {
      const textFile = join(tempDir, 'config-text');
      writeFileSync(textFile, `${inputs.configText}\n`, { mode: 0o600 });
      extraFiles.push(textFile);
    }
    const { config } = loadConfig({ extraFiles });
    const knownImages = config.sections();
    const hadSection = applyOverrides(config, inputs.image, inputs.overrides);
    return resolveImageSpec(config, inputs.image, {
      outputDir: inputs.outputDir,
      date: localDate(),
      knownImages,
      hadSection,
      upload: inputs.upload,
    });
  } finally {
    if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
  }
}
