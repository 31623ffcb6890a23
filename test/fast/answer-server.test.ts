import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { answerFileArgument } from '../../src/pipeline/install.js';
import { serveAnswerFile } from '../../src/vm/answer-server.js';
import { testContext, testSpec } from '../support/build-context.js';

const work = mkdtempSync(join(tmpdir(), 'answer-server-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** What a client on this host (another user, another VM through 10.0.2.2) gets for a path. */
async function get(port: number, path: string, method = 'GET'): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}${path}`, { method })).status;
}

test('the answer file is served only under the random token the kernel argument carries; others are refused', async () => {
  const path = join(work, 'user-data');
  writeFileSync(path, '#cloud-config\nautoinstall:\n  identity: {password: "$6$hash"}\n');
  const spec = testSpec({ outputDir: work, answerFile: { kind: 'autoinstall', path }, answerDelivery: 'http' });
  const { ctx, reporter } = testContext(spec);
  const server = await serveAnswerFile(ctx);
  assert.ok(server);
  try {
    const match = /^http:\/\/10\.0\.2\.2:(\d+)\/([0-9a-f]{32})\/user-data$/.exec(server.url);
    assert.ok(match, server.url);
    const token = match[2];
    assert.match(answerFileArgument(spec, server.url), new RegExp(`ds=nocloud-net;s=http://10.0.2.2:\\d+/${token}/$`));
    assert.equal(await get(server.port, `/${token}/user-data`), 200);
    assert.equal(await get(server.port, `/${token}/meta-data`), 200);
    for (const guess of ['/user-data', '/meta-data', '/', `/${token}`, `/${'0'.repeat(32)}/user-data`]) {
      assert.equal(await get(server.port, guess), 404, guess);
    }
    assert.equal(await get(server.port, `/${token}/user-data`, 'POST'), 404);
    const log = reporter.text();
    assert.match(log, /warning: answer file server: refused "GET \/user-data" from 127\.0\.0\.1 \(404\)/);
    assert.match(log, /warning: answer file server: refused "POST \/TOKEN\/user-data"/);
    assert.match(log, /info: answer file server: GET \/TOKEN\/user-data from the installer \(127\.0\.0\.1\) -> 200/);
    assert.ok(!log.includes(token), 'the log does not give the token away');
  } finally {
    await server.close();
  }
  await assert.rejects(get(server.port, '/'), 'nothing listens once the install is over');
});
