/**
 * The job summary holds text from the guest (file names, os-release, kernel
 * folders, fstab's mount points) and from a previous manifest. GitHub renders
 * it as Markdown with HTML blocks: a blank line ends an HTML block (CommonMark
 * 4.6, kinds 6 and 7), so a cell that held one would end the table and what
 * follows would render as Markdown: links and images that the guest wrote.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderSummary } from '../../src/action/summary.js';
import type { BuildResult } from '../../src/pipeline/build.js';

/** Every way to end a line (CommonMark ends one at \n, \r and \r\n), and what a terminal would obey. */
const BREAKS = ['\n', '\r', '\r\n', '\n \n', '\n\t\n', '\u2028', '\u0085', '\x0b', '\x0c', '\x1b[2J'];

/** A guest file name that tries to end the table and write Markdown after it. */
const forged = (b: string): string =>
  `/tmp/x${b}${b}![tracker](https://evil.example/x.png) [click](https://evil.example)${b}`;

function result(b: string): BuildResult {
  return {
    artifacts: [
      { role: 'image', format: 'qcow2', final: '/images/img-2026-01-01.qcow2', sha256: 'ab'.repeat(32), size: 1 },
      { role: 'image-checksum', format: 'qcow2', final: '/images/img-2026-01-01.qcow2.sha256sum' },
      { role: 'manifest', final: '/images/img-2026-01-01.manifest.json' },
      { role: 'packages', final: '/images/img-2026-01-01.packages' },
      { role: 'sbom', final: '/images/img-2026-01-01.cdx.json' },
      { role: 'changes', final: '/images/img-2026-01-01.changes' },
      { role: 'sums', final: '/images/img-2026-01-01.SHA256SUMS' },
      { role: 'console-log', final: '/images/img-2026-01-01.console.log' },
    ],
    diskUsage: 1,
    changes: {
      previous: { source: `old.json${b}`, image: forged(b), date: `2025${b}`, packageCount: 1 },
      current: { image: 'img-2026-01-01.qcow2', packageCount: 1, imageSize: 1 },
      added: [],
      removed: [],
      upgraded: [{ name: 'libc6', architecture: 'amd64', from: '2.36-9', to: '2.36-10' }],
      downgraded: [],
    },
    packageCount: 1,
    distribution: `Debian${b}${b}<script>x</script>`,
    kernel: forged(b),
    accelerator: 'kvm',
    arch: 'x86_64',
    firmware: 'uefi',
    removedLogs: [],
    generalized: [
      { operation: 'tmp-files', path: forged(b), found: 'file', done: 'removed' },
      { operation: 'tmp-files', path: '/tmp/y', found: 'file', done: 'removed' },
    ],
    zeroing: 'discard',
    layout: {
      table: 'gpt',
      diskSize: 1,
      partitions: [{ number: 1, device: '/dev/sda1', type: 'x', typeName: `Linux${b}`, size: 1 }],
      filesystems: [
        {
          device: '/dev/sda1',
          type: 'ext4',
          uuid: 'u',
          label: forged(b),
          mountPoint: forged(b),
          action: `zeroed${b}`,
          removedLogs: [forged(b)],
        },
      ],
      leftAlone: [{ device: '/dev/sda2', why: forged(b) }],
    },
    uploads: [],
    cacheHit: false,
    installer: { dir: '/cache', files: {}, downloaded: true },
    bootChecks: [
      { command: 'systemctl is-system-running', where: 'c:1', exitCode: 0, seconds: 1.25, lastLines: [] },
      { command: forged(b), where: 'c:2', exitCode: 0, seconds: 0.5, lastLines: [] },
    ],
    steps: [],
    changed: true,
    history: [],
  } as unknown as BuildResult;
}

/**
 * The summary's HTML blocks as CommonMark reads them: lines end at \n, \r or
 * \r\n; a block that starts with `<pre` (kind 1) ends at the line that holds
 * `</pre>`, any other (kinds 6 and 7: table, p, h2) at a blank line.
 */
function blocks(markdown: string): string[] {
  const found: string[] = [];
  let current: string[] = [];
  const end = (): void => {
    if (current.length) found.push(current.join('\n'));
    current = [];
  };
  for (const line of markdown.split(/\r\n|\r|\n/)) {
    const inPre = current.length > 0 && current[0].startsWith('<pre');
    if (inPre) {
      current.push(line);
      if (line.includes('</pre>')) end();
    } else if (/^[ \t]*$/.test(line)) {
      end();
    } else {
      current.push(line);
      if (current.length === 1 && line.startsWith('<pre') && line.includes('</pre>')) end();
    }
  }
  end();
  return found;
}

/** Each block is whole HTML elements: it starts with a tag and closes every table, row, cell, paragraph and pre. */
function assertWholeBlocks(markdown: string, what: string): void {
  for (const block of blocks(markdown)) {
    if (block.trim() === '') continue;
    assert.match(block, /^</, `${what}: a block that is not HTML (it renders as Markdown):\n${block}`);
    for (const tag of ['table', 'tr', 'td', 'p', 'pre', 'h2', 'h3', 'code']) {
      const opened = block.split(`<${tag}>`).length - 1;
      const closed = block.split(`</${tag}>`).length - 1;
      assert.equal(opened, closed, `${what}: <${tag}> opened ${opened} times and closed ${closed} in:\n${block}`);
    }
  }
  // eslint-disable-next-line no-control-regex
  const control = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/.exec(markdown);
  assert.equal(control, null, `${what}: U+${control?.[0].charCodeAt(0).toString(16)} written as it is`);
}

describe('the job summary', () => {
  test("the boot test's checks: a table of command, exit code and seconds", () => {
    const markdown = renderSummary({ image: 'img', result: result(''), steps: [] } as never);
    assert.match(
      markdown,
      /<h3>Checks in the booted image<\/h3>\n<table>\n<tr><th>Command<\/th><th>Exit code<\/th><th>Seconds<\/th><\/tr>\n<tr><td><code>systemctl is-system-running<\/code><\/td><td>0<\/td><td>1\.3<\/td><\/tr>/,
    );
  });

  test('no cell holds a line break: text from the guest or a previous manifest cannot end a table', () => {
    for (const b of BREAKS) {
      const what = JSON.stringify(b);
      const html = renderSummary({
        image: 'img',
        steps: [{ step: 'scrub', durationMs: 1, ok: true }],
        result: result(b),
      });
      assertWholeBlocks(html, what);
      assert.match(html, /<td><code>\/tmp\/x\\/, `${what}: the path is shown with its escapes`);
    }
  });

  test("a failure's message keeps its lines in a block of its own, which a blank line in it does not end", () => {
    for (const b of BREAKS) {
      const message = `The scrub step failed: cannot remove ${forged(b)}\n\nits last lines:\n  | ${forged(b)}`;
      const html = renderSummary({ image: 'img', steps: [], failure: { step: 'scrub', message } });
      assertWholeBlocks(html, JSON.stringify(b));
      assert.match(html, /\n\n<pre>The scrub step failed: cannot remove \/tmp\/x/);
    }
  });

  test('15,000 files in /tmp, 100,000 changed packages or a long failure keep the summary under 1 MiB, counted by operation', () => {
    const generalized = [
      { operation: 'machine-id', path: '/etc/machine-id', found: 'file', done: 'emptied' },
      ...Array.from({ length: 15_000 }, (_, i) => ({
        operation: 'tmp-files',
        path: `/tmp/${i % 2 ? 'x'.repeat(4000) : '\x1b'.repeat(1000)}-${i}`,
        found: 'file',
        done: 'removed',
      })),
    ];
    const changes = {
      ...result('').changes,
      added: Array.from({ length: 100_000 }, (_, i) => ({
        name: `lib${'x'.repeat(300)}${i}`,
        version: `1.${'0'.repeat(300)}`,
        architecture: 'amd64',
      })),
    };
    const big = { ...result(''), generalized, changes } as unknown as BuildResult;
    const failure = { step: 'upload' as const, message: `rsync said: ${'\x1b[2J'.repeat(2_000_000)}` };
    const html = renderSummary({ image: 'img', steps: [], result: big, failure });
    assert.ok(Buffer.byteLength(html) < 2 ** 20, `${Buffer.byteLength(html)} bytes`);
    assertWholeBlocks(html, 'the large summary');
    assert.match(html, /<tr><td>machine-id<\/td><td>emptied<\/td><td>1<\/td><\/tr>/);
    assert.match(html, /<tr><td>tmp-files<\/td><td>removed<\/td><td>15000<\/td><\/tr>/);
    assert.match(html, /<details><summary>Each path \(15001\)<\/summary>/);
    assert.match(html, /<td>… \d+ more \(the build's log lists every path\)<\/td>/);
    assert.match(html, /<td>… \d+ more in the \.changes file<\/td>/);
    assert.match(html, /… \(\d+ characters more in the log\)<\/pre>/);
    assert.match(html, /<td><code>\/etc\/machine-id<\/code><\/td>/, 'the first rows are shown');
  });
});
