import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Host } from '../../src/host/host.js';
import { SignatureError, verifySignature } from '../../src/net/gpgv.js';

/**
 * gpgv's verdicts from its status lines, as GnuPG 2.2 printed them for the
 * keys of test/servers/gpgv.test.ts (shortened): the judging alone, on a
 * stand-in host. The same cases run against gpgv itself in the servers tier.
 */

const GOOD = `[GNUPG:] NEWSIG g@x.invalid
[GNUPG:] KEY_CONSIDERED 80A6DE8285E7A0132645553F74906CAE5CAD0229 0
[GNUPG:] GOODSIG 74906CAE5CAD0229 Good <g@x.invalid>
[GNUPG:] VALIDSIG 80A6DE8285E7A0132645553F74906CAE5CAD0229 2026-12-06 1796548047 0 4 0 22 8 00 80A6DE8285E7A0132645553F74906CAE5CAD0229
`;
const REVOKED = `[GNUPG:] NEWSIG r@x.invalid
[GNUPG:] REVKEYSIG 618484C38944B3BC Revoked <r@x.invalid>
[GNUPG:] VALIDSIG 009D182F707E8D52EEA2CEBF618484C38944B3BC 2026-12-06 1796548047 0 4 0 22 8 00 009D182F707E8D52EEA2CEBF618484C38944B3BC
`;
const EXPIRED_KEY = `[GNUPG:] NEWSIG e@x.invalid
[GNUPG:] KEYEXPIRED 1609372800
[GNUPG:] EXPKEYSIG C0A321A82F701FDA Expired <e@x.invalid>
[GNUPG:] VALIDSIG 3C74264C962CE0A63D6A554FC0A321A82F701FDA 2020-02-01 1580515200 0 4 0 22 8 00 3C74264C962CE0A63D6A554FC0A321A82F701FDA
`;
const EXPIRED_SIGNATURE = `[GNUPG:] NEWSIG o@x.invalid
[GNUPG:] EXPSIG F20BC34015BC35EE Old <o@x.invalid>
[GNUPG:] VALIDSIG 80588171FA61F7D726806714F20BC34015BC35EE 2020-02-01 1580515200 1580601600 4 0 22 8 00 80588171FA61F7D726806714F20BC34015BC35EE
`;
const BAD = `[GNUPG:] NEWSIG g@x.invalid
[GNUPG:] BADSIG 74906CAE5CAD0229 Good <g@x.invalid>
`;
const UNKNOWN_KEY = `[GNUPG:] NEWSIG o@x.invalid
[GNUPG:] ERRSIG F20BC34015BC35EE 22 8 00 1796548047 9 80588171FA61F7D726806714F20BC34015BC35EE
[GNUPG:] NO_PUBKEY F20BC34015BC35EE
`;

/** A host whose gpgv prints `stdout` and exits with `exitCode`. */
function gpgvHost(stdout: string, exitCode: number, lastLines: string[] = []): Host {
  return { live: true, run: async () => ({ exitCode, signal: null, stdout, lastLines }) } as unknown as Host;
}

function verify(stdout: string, exitCode: number, lastLines?: string[]): ReturnType<typeof verifySignature> {
  return verifySignature({
    host: gpgvHost(stdout, exitCode, lastLines),
    keyring: '/keys.gpg',
    signature: '/sig',
    what: 'SHA256SUMS',
  });
}

const refusedWith = (pattern: RegExp) => (error: unknown) =>
  error instanceof SignatureError && pattern.test(error.message);

describe('gpgv: a signature counts only when its verdict is GOODSIG', () => {
  test('a good signature: its primary key and user ID', async () => {
    assert.deepEqual(await verify(GOOD, 0), {
      fingerprints: ['80A6DE8285E7A0132645553F74906CAE5CAD0229'],
      signers: ['Good <g@x.invalid>'],
      refused: [],
    });
  });

  test('REVKEYSIG, EXPKEYSIG, EXPSIG are refused by name, whatever VALIDSIG and the exit code say', async () => {
    await assert.rejects(
      verify(REVOKED, 0),
      refusedWith(/618484C38944B3BC \(Revoked <r@x.invalid>\) is by a revoked key \(REVKEYSIG\)/),
    );
    await assert.rejects(verify(EXPIRED_KEY, 0), refusedWith(/is by an expired key \(EXPKEYSIG\)/));
    await assert.rejects(
      verify(EXPIRED_SIGNATURE, 1),
      refusedWith(/F20BC34015BC35EE \(Old <o@x.invalid>\) has expired \(EXPSIG\)/),
    );
    await assert.rejects(
      verify(REVOKED + EXPIRED_KEY, 0),
      refusedWith(
        /^SHA256SUMS has no valid signature by a key of \/keys\.gpg: .*REVKEYSIG.*; .*EXPKEYSIG.*; only a good signature/,
      ),
    );
  });

  test('beside a good signature, the others are named but do not count; one BADSIG refuses the file', async () => {
    const good = await verify(REVOKED + GOOD, 0);
    assert.deepEqual(good.fingerprints, ['80A6DE8285E7A0132645553F74906CAE5CAD0229']);
    assert.deepEqual(good.refused, [
      'the signature by key 618484C38944B3BC (Revoked <r@x.invalid>) is by a revoked key (REVKEYSIG)',
    ]);
    const withUnknown = await verify(GOOD + UNKNOWN_KEY, 2);
    assert.deepEqual(withUnknown.refused, [
      'the signature by key F20BC34015BC35EE is by a key the keyring does not hold (NO_PUBKEY)',
    ]);
    await assert.rejects(verify(GOOD + BAD, 1), refusedWith(/by key 74906CAE5CAD0229 is BAD/));
  });

  test('a key the keyring lacks, no signature, or gpgv stopping midway: said as such', async () => {
    await assert.rejects(
      verify(UNKNOWN_KEY, 2),
      refusedWith(/^SHA256SUMS is signed by key F20BC34015BC35EE, which the keyring \/keys\.gpg does not hold$/),
    );
    await assert.rejects(verify('[GNUPG:] NODATA 1\n', 2), refusedWith(/^SHA256SUMS holds no OpenPGP signature$/));
    await assert.rejects(
      verify('[GNUPG:] NEWSIG\n', 2, ['gpgv: out of core']),
      refusedWith(/^gpgv failed \(exit 2\): gpgv: out of core$/),
    );
    await assert.rejects(verify(GOOD, 2, ['gpgv: write error']), refusedWith(/^gpgv failed \(exit 2\)/));
  });
});
