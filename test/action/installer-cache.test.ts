import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Input } from '../../src/action/constants.js';
import { readInputs } from '../../src/action/inputs.js';
import { InstallerCache, installerKeyPrefix } from '../../src/action/installer-cache.js';
import { resolveActionSpec } from '../../src/action/resolve-spec.js';
import type { Reporter } from '../../src/common/reporter.js';
import { removeRunnerDirs } from '../support/action-runner.js';
import { removeWorkDirs } from './fixture-build.js';
import { actionCacheScenario, v1Backend } from './installer-cache-scenarios.js';

after(() => {
  removeWorkDirs();
  removeRunnerDirs();
});

actionCacheScenario(v1Backend());

describe('the installer cache without a cache service', () => {
  test('warns once and carries on; URLs decide the key prefix', async () => {
    const saved = { ...process.env };
    delete process.env.ACTIONS_CACHE_URL;
    delete process.env.ACTIONS_RESULTS_URL;
    delete process.env.IMAGE_FACTORY_CONFIG;
    try {
      const specFor = (linux: string) =>
        resolveActionSpec(
          readInputs(
            (name) =>
              ({
                [Input.Image]: 'remote',
                [Input.ConfigText]: `[remote]\nlinux = ${linux}\ninitrd = https://mirror.example/initrd.gz\n`,
                [Input.InstallDependencies]: 'false',
                [Input.Upload]: 'false',
                [Input.OutputDir]: '/tmp',
              })[name as string] ?? '',
          ),
        );
      const spec = specFor('https://mirror.example/linux');
      const messages: string[] = [];
      const reporter: Reporter = {
        info: () => undefined,
        notice: () => undefined,
        warning: (message) => messages.push(message),
        error: (message) => messages.push(message),
        command: () => undefined,
        output: () => undefined,
        stepStarted: () => undefined,
        stepFinished: () => undefined,
        progress: () => undefined,
      };
      const cache = new InstallerCache(spec, reporter);
      assert.equal(cache.active, false);
      await cache.restore();
      await cache.save({ dir: spec.cacheDir, files: {}, downloaded: true });
      assert.deepEqual(messages, [
        'The GitHub Actions cache service is not available to this job (no ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL): the installer files are downloaded and not cached.',
      ]);

      const prefix = installerKeyPrefix(spec);
      assert.match(prefix ?? '', /^image-factory-installer-remote-[0-9a-f]{16}-$/);
      assert.notEqual(
        installerKeyPrefix(specFor('https://mirror.example/linux-6.12')),
        prefix,
        'a changed URL never matches an old entry',
      );
    } finally {
      process.env = saved;
    }
  });
});
