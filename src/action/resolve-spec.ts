import type { ImageSpec } from '../config/image-spec.js';
import { resolveSpec } from '../config/resolve-spec.js';
import type { ActionInputs } from './inputs.js';

/** How messages name the `config-text` input, in place of a file: `Input 'config-text':3: …`. */
export const CONFIG_TEXT_SOURCE = "Input 'config-text'";

/**
 * The image's settings as the command line would resolve them, plus the
 * action's own configuration read last (later wins): the `config` file, then
 * the `config-text`, whose errors name the input and its line.
 */
export function resolveActionSpec(inputs: ActionInputs, warn?: (message: string) => void): ImageSpec {
  return resolveSpec({
    image: inputs.image,
    overrides: inputs.overrides,
    outputDir: inputs.outputDir,
    upload: inputs.upload,
    extraFiles: inputs.configFile ? [inputs.configFile] : [],
    extraTexts: inputs.configText === undefined ? [] : [{ text: inputs.configText, source: CONFIG_TEXT_SOURCE }],
    warn,
  });
}
