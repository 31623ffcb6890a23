import type { ImageSpec } from '../config/image-spec.js';
import { resolveSpec } from '../config/resolve-spec.js';
import { UsageError } from '../config/usage-error.js';
import type { ActionInputs } from './inputs.js';

/** How messages name the `config-text` input, in place of a file: `Input 'config-text':3: …`. */
export const CONFIG_TEXT_SOURCE = "Input 'config-text'";

/**
 * The image's settings as the command line would resolve them, plus the
 * action's own configuration read last (later wins): the `config` file, then
 * the `config-text`, whose errors name the input and its line.
 */
export function resolveActionSpec(inputs: ActionInputs, warn?: (message: string) => void): ImageSpec {
  const spec = resolveSpec({
    image: inputs.image,
    overrides: inputs.overrides,
    outputDir: inputs.outputDir,
    upload: inputs.upload,
    extraFiles: inputs.configFile ? [inputs.configFile] : [],
    extraTexts: inputs.configText === undefined ? [] : [{ text: inputs.configText, source: CONFIG_TEXT_SOURCE }],
    warn,
  });
  return withSigningInputs(spec, inputs);
}

/**
 * The `signing-key` and `signing-passphrase` inputs (secrets, as text) win
 * over the configuration's files; a passphrase with no key anywhere is bad input.
 */
function withSigningInputs(spec: ImageSpec, inputs: ActionInputs): ImageSpec {
  const { signingKey, signingPassphrase } = inputs;
  if (signingKey === undefined && signingPassphrase === undefined) return spec;
  const passphrase = signingPassphrase === undefined ? spec.signing?.passphrase : { text: signingPassphrase };
  if (signingKey !== undefined) {
    const signing = { key: { text: signingKey }, where: "Input 'signing-key'" };
    return { ...spec, signing: passphrase === undefined ? signing : { ...signing, passphrase } };
  }
  if (!spec.signing || !passphrase) {
    throw new UsageError(
      "Input 'signing-passphrase' is set, but there is no signing key: set the signing-key input (or signing-key in the configuration).",
    );
  }
  return { ...spec, signing: { ...spec.signing, passphrase } };
}
