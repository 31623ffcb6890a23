import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The repository's root (this file runs from build/test/fast/). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The relative links of a Markdown text: `[text](target)`, without a scheme or a lone `#anchor`. */
export function relativeLinks(markdown: string): string[] {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...withoutCode.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((match) => match[1])
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('#'))
    .map((target) => decodeURIComponent(target.replace(/#.*$/, '')));
}

describe('links between the README and docs/', () => {
  test('the link reader finds relative links and leaves out URLs, anchors and code', () => {
    assert.deepEqual(
      relativeLinks('[a](docs/x.md) [b](https://e.org) [c](#top) `[d](no.md)` [e](y.md#part)\n```\n[f](z.md)\n```'),
      ['docs/x.md', 'y.md'],
    );
  });

  test('every relative link of README.md and docs/*.md leads to a file of the repository', () => {
    const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((name) => join('docs', name))].filter((file) =>
      file.endsWith('.md'),
    );
    const broken = files.flatMap((file) =>
      relativeLinks(readFileSync(join(ROOT, file), 'utf8'))
        .filter((target) => !existsSync(join(ROOT, dirname(file), target)))
        .map((target) => `${file}: ${target}`),
    );
    assert.deepEqual(broken, []);
    assert.ok(files.length > 3, 'the README and the docs were read');
  });
});
