import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImageSpec } from '../../src/config/image-spec.js';
import { bootFailure, Expectation } from '../../src/pipeline/boot-test.js';
import { SCREEN_HEADING } from '../../src/vm/virt-install.js';
import { RecordingReporter, testContext, testSpec } from '../support/build-context.js';

const TOKEN = '0123456789ab';
const MARKER = `image-factory-boot-test ${TOKEN}: cloud-init finished after 9.50 seconds`;

/** An expectation of the boot test, after the console showed `text` (nothing when empty). */
function seen(bootTest: Partial<ImageSpec['bootTest']>, text: string, arch: ImageSpec['arch'] = 'x86_64') {
  const spec = testSpec({
    outputDir: '/images',
    arch,
    bootTest: { enabled: true, timeoutMs: 40_000, expect: 'login:', cloudInit: true, ramMiB: 512, ...bootTest },
  });
  const { ctx } = testContext(spec, { recording: true });
  const expectation = new Expectation(ctx, TOKEN);
  if (text) expectation.check(text, new RecordingReporter());
  return { ctx, expectation };
}

describe('why the boot test failed, in words', () => {
  test('a custom expect without cloud-init, not shown before boot-timeout: the limit, the pattern and the screen', () => {
    const { ctx, expectation } = seen({ expect: 'ready>', cloudInit: false }, 'Booting the kernel\nsystem up');
    const error = bootFailure(ctx, expectation, ['Booting the kernel', 'system up'], undefined);
    assert.equal(
      error.message,
      'the boot test expected the console to show /ready>/, but the boot did not get there within 40.0 s ' +
        '(boot-timeout), so the VM was stopped. The console never showed /ready>/.\n' +
        `${SCREEN_HEADING}\n  | Booting the kernel\n  | system up`,
    );
  });

  test('a VM that stopped by itself: how long it ran, not the boot-timeout', () => {
    const { ctx, expectation } = seen({}, 'reboot: Power down');
    const error = bootFailure(ctx, expectation, ['reboot: Power down'], 12_300);
    assert.match(error.message, /but the VM stopped after 12\.3 s, before the system came up\. /);
    assert.doesNotMatch(error.message, /boot-timeout/);
    assert.match(error.message, /The console never showed \/login:\/\.\n/);
  });

  test('the prompt came but cloud-init never printed its marker: the datasource and the console are named', () => {
    const { ctx, expectation } = seen({}, 'debian login: ');
    const message = bootFailure(ctx, expectation, ['debian login:'], undefined).message;
    assert.match(
      message,
      /expected the console to show \/login:\/ and cloud-init's marker 'image-factory-boot-test 0123456789ab: cloud-init finished'/,
    );
    assert.match(
      message,
      /The console showed \/login:\/, but cloud-init never printed its marker \(.*NoCloud datasource.*reach ttyS0\?\)\./,
    );
  });

  test('cloud-init finished but the expected text never came: said so', () => {
    const { ctx, expectation } = seen({ expect: 'ready>' }, MARKER);
    const message = bootFailure(ctx, expectation, [MARKER], undefined).message;
    assert.match(message, /The console never showed \/ready>\/ \(cloud-init did finish\)\.\n/);
  });

  test('an empty console on aarch64: no boot loader, or a kernel that does not print to ttyAMA0', () => {
    const { ctx, expectation } = seen({}, '', 'aarch64');
    const error = bootFailure(ctx, expectation, [], undefined);
    assert.match(error.message, / The console stayed empty: .*\(console=ttyAMA0\)\?$/);
    assert.doesNotMatch(error.message, /ttyS0/);
    assert.ok(!error.message.includes(SCREEN_HEADING), 'no screen to quote');
    assert.deepEqual(error.screen, []);
  });
});
