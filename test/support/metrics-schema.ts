import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { REPO_ROOT } from './fixture.js';

const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'docs', 'metrics.schema.json'), 'utf8')) as object;
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

/** What is wrong with a metrics file by docs/metrics.schema.json (JSON Schema 2020-12, by ajv); [] when nothing. */
export function metricsSchemaErrors(metrics: unknown): string[] {
  if (validate(metrics)) return [];
  return (validate.errors ?? []).map((error: ErrorObject) => `${error.instancePath || '/'} ${error.message ?? ''}`);
}
