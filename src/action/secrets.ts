import { readFileSync } from 'node:fs';
import { secretsOf } from '../common/credentials.js';
import { signingSecrets } from '../config/signing-spec.js';
import type { ActionInputs } from './inputs.js';

/** A configuration file larger than this is not scanned (it is not a configuration). */
const MAX_SCANNED_BYTES = 1 << 20;

/** Every `scheme://…` run of characters in a text: the URIs whose passwords are to be masked. */
function urisIn(text: string): string[] {
  return [...text.matchAll(/[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>]+/g)].map((match) => match[0]);
}

/**
 * The passwords in every URI of the raw inputs — the overrides, `config-text`
 * and the `config` file — found before anything is resolved, so that the
 * runner masks them in every line, annotation and summary from the first one
 * on (a configuration error may quote a raw value).
 */
export function inputSecrets(inputs: ActionInputs): string[] {
  const texts = Object.values(inputs.overrides).filter((value): value is string => typeof value === 'string');
  if (inputs.configText !== undefined) texts.push(inputs.configText);
  if (inputs.configFile) {
    try {
      texts.push(readFileSync(inputs.configFile, 'utf8').slice(0, MAX_SCANNED_BYTES));
    } catch {
      // An unreadable file is the configuration's error to report, with its own words.
    }
  }
  const signing =
    inputs.signingKey === undefined && inputs.signingPassphrase === undefined
      ? []
      : signingSecrets({
          key: { text: inputs.signingKey ?? '' },
          ...(inputs.signingPassphrase === undefined ? {} : { passphrase: { text: inputs.signingPassphrase } }),
          where: '',
        });
  return [...secretsOf(texts.flatMap(urisIn)), ...signing];
}
