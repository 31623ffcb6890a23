import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSource } from '../../src/config/image-spec.js';
import { UsageError } from '../../src/config/usage-error.js';
import {
  basicAuth,
  percentDecode,
  redactSecrets,
  redactUri,
  rsyncCredentials,
  secretsOf,
  secretVariants,
  uriCredentials,
} from '../../src/common/credentials.js';
import { seededRandom } from '../support/seeded-random.js';

const basic = (credentials: string): string => `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;

describe('credentials in http: and https: URLs', () => {
  test('user and password: redacted, split off, sent as Basic', () => {
    const uri = 'http://mirror:pa55-w0rd@127.0.0.1:8080/dists/vmlinuz';
    assert.equal(redactUri(uri), 'http://mirror:***@127.0.0.1:8080/dists/vmlinuz');
    assert.deepEqual(uriCredentials(uri), {
      user: 'mirror',
      password: 'pa55-w0rd',
      withoutPassword: 'http://mirror@127.0.0.1:8080/dists/vmlinuz',
      withoutUserinfo: 'http://127.0.0.1:8080/dists/vmlinuz',
    });
    assert.deepEqual(basicAuth(uri), {
      url: 'http://127.0.0.1:8080/dists/vmlinuz',
      authorization: basic('mirror:pa55-w0rd'),
    });
    assert.deepEqual(secretVariants(uri), ['pa55-w0rd']);
  });

  test('a percent-encoded password is decoded for use; every form is a secret', () => {
    const uri = 'https://me%40corp:p%40ss%3Aw%2Frd%25@mirror.example/debian/';
    assert.equal(uriCredentials(uri).password, 'p@ss:w/rd%');
    assert.equal(uriCredentials(uri).user, 'me%40corp');
    assert.equal(redactUri(uri), 'https://me%40corp:***@mirror.example/debian/');
    assert.deepEqual(basicAuth(uri), {
      url: 'https://mirror.example/debian/',
      authorization: basic('me@corp:p@ss:w/rd%'),
    });
    assert.deepEqual(new Set(secretVariants(uri)), new Set(['p%40ss%3Aw%2Frd%25', 'p@ss:w/rd%']));
  });

  test("a raw '@' and ':' in the password: the last '@' before the path ends it, as URL parsers read it", () => {
    const uri = 'https://u:p@ss:word@mirror.example/x';
    assert.equal(new URL(uri).password, 'p%40ss%3Aword', 'what a URL parser makes of it');
    assert.equal(uriCredentials(uri).password, 'p@ss:word');
    assert.equal(redactUri(uri), 'https://u:***@mirror.example/x');
    assert.deepEqual(new Set(secretVariants(uri)), new Set(['p@ss:word', 'p%40ss%3Aword']));
    assert.equal(
      redactSecrets(`GET ${new URL(uri).href} failed`, secretVariants(uri)),
      'GET https://u:***@mirror.example/x failed',
    );
  });

  test("a raw '/', '#' or '?' in the password makes no valid URL, and still never shows", () => {
    for (const uri of ['rsync://u:pa/ss@host/module/', 'http://u:pa#ss@host/x', 'https://u:pa?ss@host/x']) {
      assert.doesNotMatch(redactUri(uri), /pa.ss/, uri);
      assert.match(redactUri(uri), /^[a-z]+:\/\/u:\*\*\*@host\//, uri);
      assert.ok(
        secretVariants(uri).some((secret) => secret.includes('pa') && secret.includes('ss')),
        uri,
      );
      assert.throws(
        () => parseSource(uri, (message) => new UsageError(message)),
        (error: Error) => !/pa.ss/.test(error.message),
        uri,
      );
    }
  });

  test("an '@' in the path of a URL with a password: more is hidden, never less", () => {
    const uri = 'http://u:secret@host/a@b/vmlinuz';
    assert.equal(uriCredentials(uri).password, 'secret');
    assert.equal(uriCredentials(uri).withoutUserinfo, 'http://host/a@b/vmlinuz');
    assert.doesNotMatch(redactUri(uri), /secret/);
    assert.match(redactUri(uri), /^http:\/\/u:\*\*\*@/);
    assert.ok(secretVariants(uri).includes('secret'));
  });

  test('a user without a password, and no user at all', () => {
    assert.equal(redactUri('http://anonymous@mirror.example/x'), 'http://anonymous@mirror.example/x');
    assert.deepEqual(secretVariants('http://anonymous@mirror.example/x'), []);
    assert.deepEqual(basicAuth('http://anonymous@mirror.example/x'), {
      url: 'http://mirror.example/x',
      authorization: basic('anonymous:'),
    });
    assert.equal(redactUri('http://mirror.example/a@b'), 'http://mirror.example/a@b');
    assert.deepEqual(basicAuth('https://mirror.example/x'), { url: 'https://mirror.example/x' });
    assert.deepEqual(uriCredentials('https://mirror.example/x'), {
      withoutPassword: 'https://mirror.example/x',
      withoutUserinfo: 'https://mirror.example/x',
    });
    assert.deepEqual(secretVariants('http://u:@host/'), [], 'an empty password is no secret');
  });

  test('an IPv6 host', () => {
    const uri = 'http://u:pw1@[::1]:8080/x';
    assert.equal(redactUri(uri), 'http://u:***@[::1]:8080/x');
    assert.equal(basicAuth(uri).url, 'http://[::1]:8080/x');
  });
});

describe('credentials in rsync targets', () => {
  test('rsync:// : the password goes in RSYNC_PASSWORD, decoded; the user stays', () => {
    const uri = 'rsync://fetcher:rsync%2FSecret@127.0.0.1:873/private/initrd.gz';
    assert.deepEqual(rsyncCredentials(uri), {
      uri: 'rsync://fetcher@127.0.0.1:873/private/initrd.gz',
      env: { RSYNC_PASSWORD: 'rsync/Secret' },
    });
    assert.equal(redactUri(uri), 'rsync://fetcher:***@127.0.0.1:873/private/initrd.gz');
    assert.deepEqual(new Set(secretVariants(uri)), new Set(['rsync%2FSecret', 'rsync/Secret']));
    assert.deepEqual(rsyncCredentials('rsync://user@host/module/'), { uri: 'rsync://user@host/module/', env: {} });
  });

  test('user:password@host::module: the password as written, in RSYNC_PASSWORD', () => {
    const uri = 'uploader:s3cr%41t@backup.example::images/golden/';
    assert.deepEqual(rsyncCredentials(uri), {
      uri: 'uploader@backup.example::images/golden/',
      env: { RSYNC_PASSWORD: 's3cr%41t' },
    });
    assert.equal(redactUri(uri), 'uploader:***@backup.example::images/golden/');
    assert.ok(secretVariants(uri).includes('s3cr%41t'));
    assert.deepEqual(uriCredentials('uploader@backup.example::images/'), {
      user: 'uploader',
      withoutPassword: 'uploader@backup.example::images/',
      withoutUserinfo: 'backup.example::images/',
    });
    assert.deepEqual(rsyncCredentials('backup.example::images/'), { uri: 'backup.example::images/', env: {} });
  });

  test("a password that cannot be told from the path is refused, not handed to rsync's command line", () => {
    assert.throws(
      () => rsyncCredentials('rsync://u:pa/ss@host/module/'),
      (error: Error) => {
        assert.equal(
          error.message,
          "the user and password of rsync://u:***@host/module/ cannot be told from its path: write a '/' in the password as %2F (or keep '@' out of the path)",
        );
        return true;
      },
    );
    assert.equal(
      rsyncCredentials('rsync://u:pa?ss@host/module/').env.RSYNC_PASSWORD,
      'pa?ss',
      "'?' means nothing to rsync",
    );
    assert.equal(rsyncCredentials('rsync://u:pw@host/module/a@b').uri, 'rsync://u@host/module/a@b');
    assert.equal(rsyncCredentials('rsync://host/module/a:b@c').uri, 'rsync://host/module/a:b@c');
  });

  test('user@host:path over ssh: a user, never a password', () => {
    assert.deepEqual(uriCredentials('builder@images.example:/srv/images/'), {
      user: 'builder',
      withoutPassword: 'builder@images.example:/srv/images/',
      withoutUserinfo: 'images.example:/srv/images/',
    });
    assert.deepEqual(rsyncCredentials('builder@images.example:/srv/images/'), {
      uri: 'builder@images.example:/srv/images/',
      env: {},
    });
    assert.equal(redactUri('builder@images.example:/srv/images/'), 'builder@images.example:/srv/images/');
    assert.deepEqual(secretVariants('images.example:/srv/images/'), []);
    assert.deepEqual(secretVariants('/var/lib/images/a:b@c'), [], 'a local path');
  });
});

describe('masking text', () => {
  test('every occurrence, longest secret first', () => {
    assert.equal(redactSecrets('xabcdx ab', ['ab', 'abcd']), 'x***x ***');
    assert.equal(redactSecrets('nothing here', []), 'nothing here');
    assert.equal(redactSecrets('keep', ['']), 'keep');
  });

  test('secretsOf gathers the variants of several URIs', () => {
    assert.deepEqual(
      new Set(secretsOf(['http://a:one@h/', 'rsync://b:t%77o@h/m/', 'https://h/'])),
      new Set(['one', 't%77o', 'two']),
    );
  });

  test('percentDecode decodes what is valid and keeps the rest', () => {
    assert.equal(percentDecode('%41%zz%'), 'A%zz%');
    assert.equal(percentDecode('%C3%A9'), 'é');
    assert.equal(percentDecode('%FF%41'), '%FFA');
  });
});

// ---------------------------------------------------------------------------
// Property: for many generated URIs with passwords, nothing made for display or
// messages contains the password, in any form it was written or decoded to.

const random = seededRandom;

const SEED = Number(process.env.CREDENTIALS_TEST_SEED ?? 20260101);
const next = random(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
const word = (alphabet: string, min: number, max: number): string =>
  Array.from({ length: min + Math.floor(next() * (max - min + 1)) }, () => pick([...alphabet])).join('');

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const SAFE = `${LOWER}ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789`;
const SPECIAL = "@:/%#?!$&'()+,;=~-._ ";

function generatePassword(): { written: string; plain: string } {
  switch (pick(['raw', 'special', 'encoded', 'mixed'] as const)) {
    case 'raw': {
      const plain = word(SAFE, 4, 16);
      return { written: plain, plain };
    }
    case 'special': {
      // Written as is: '@', ':', '/', '#', '%' … straight into the URI.
      const written = word(SAFE + SPECIAL.repeat(3), 4, 16);
      return { written, plain: percentDecode(written) };
    }
    case 'encoded': {
      const plain = word(SAFE + SPECIAL + 'é€', 4, 12);
      return { written: encodeURIComponent(plain), plain };
    }
    case 'mixed': {
      const plain = `${word(SAFE, 2, 6)}${pick([...SPECIAL])}${word(SAFE, 2, 6)}`;
      const written = plain.replace(/[@/#?%]/g, (c) => (next() < 0.5 ? encodeURIComponent(c) : c));
      return { written, plain: percentDecode(written) };
    }
  }
}

function generateUri(written: string): { uri: string; before: string; after: string; form: string } {
  const user = word(`${LOWER}0123456789._-`, 1, 8);
  const host = pick([`${word(LOWER, 2, 8)}.${word(LOWER, 2, 4)}`, '127.0.0.1', '[::1]', word(LOWER, 3, 10)]);
  const port = next() < 0.4 ? `:${1 + Math.floor(next() * 65535)}` : '';
  const path = Array.from(
    { length: Math.floor(next() * 4) },
    () => word(`${LOWER}0123456789`, 1, 8) + (next() < 0.1 ? '@x' : ''),
  ).join('/');
  const form = pick(['http', 'https', 'rsync', 'daemon'] as const);
  const before = form === 'daemon' ? `${user}:` : `${form}://${user}:`;
  const after =
    form === 'daemon' ? `@${host.replace(/^\[.*\]$/, 'h6')}::${word(LOWER, 2, 8)}/${path}` : `@${host}${port}/${path}`;
  return { uri: `${before}${written}${after}`, before, after, form };
}

describe('property: no redacted output contains the password', () => {
  test(`2000 generated URIs (seed ${SEED})`, () => {
    let checked = 0;
    let valid = 0;
    while (checked < 2000) {
      const password = generatePassword();
      const { uri, before, after, form } = generateUri(password.written);
      let decoded = password.plain;
      try {
        decoded = decodeURIComponent(password.written);
      } catch {
        // The written form is not valid percent-encoding: percentDecode's reading it is.
      }
      const forms = [...new Set([password.written, password.plain, decoded])];
      // A password that also occurs elsewhere in the URI cannot be told apart from it: draw again.
      if (forms.some((secret) => `${before}\n${after}`.includes(secret) || secret.includes('*'))) continue;
      checked += 1;

      const messages = [redactUri(uri)];
      const secrets = secretVariants(uri);
      let href: string | undefined;
      try {
        href = new URL(uri).href;
      } catch {
        // Not a URL (a raw '/', '#', '?' in the password, or the daemon form).
      }
      messages.push(redactSecrets(`failed: ${uri} (${href ?? '-'}) with ${forms.join(' and ')}`, secrets));
      if (form === 'rsync' || form === 'daemon') {
        try {
          messages.push(rsyncCredentials(uri).uri);
        } catch (error) {
          // Refused: a password rsync would get on its command line.
          messages.push((error as Error).message);
        }
      }
      if (form !== 'daemon') {
        try {
          const source = parseSource(uri, (message) => new UsageError(message));
          messages.push(source.display);
        } catch (error) {
          messages.push((error as Error).message);
        }
      }
      for (const message of messages) {
        for (const secret of forms) {
          assert.ok(
            !message.includes(secret),
            `seed ${SEED}: ${JSON.stringify(message)} shows ${JSON.stringify(secret)} of ${JSON.stringify(uri)}`,
          );
        }
      }

      // Where the URI is unambiguous (no raw '/', '?', '#' in the password), the password is read exactly.
      if (!/[/?#]/.test(password.written)) {
        valid += 1;
        const expected = form === 'daemon' ? password.written : password.plain;
        assert.equal(uriCredentials(uri).password, expected, uri);
        if (form === 'rsync' || form === 'daemon')
          assert.deepEqual(rsyncCredentials(uri).env, { RSYNC_PASSWORD: expected }, uri);
        if (form === 'http' || form === 'https') {
          assert.equal(percentDecode(new URL(uri).password), password.plain, `a URL parser agrees: ${uri}`);
          const { url, authorization } = basicAuth(uri);
          assert.ok(!url.includes(password.written), url);
          assert.equal(
            Buffer.from((authorization ?? '').replace(/^Basic /, ''), 'base64')
              .toString('utf8')
              .split(':')
              .slice(1)
              .join(':'),
            password.plain,
          );
        }
      }
    }
    assert.ok(valid > 500, `enough unambiguous URIs were generated (${valid})`);
  });
});
