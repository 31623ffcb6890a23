import type { Host } from '../host/host.js';

/**
 * OpenPGP signatures checked by gpgv (GnuPG's verify-only tool, which trusts
 * exactly the keys of the keyring it is given): this module only builds its
 * command line and reads its machine-readable status lines (`--status-fd 1`,
 * GnuPG's doc/DETAILS). It parses no OpenPGP data itself.
 */

/** What gpgv vouched for. */
export interface GoodSignature {
  /** Fingerprints of the signing (sub)keys' primary keys, as VALIDSIG names them. */
  fingerprints: string[];
  /** The user IDs of the good signatures. */
  signers: string[];
}

/** A signature gpgv did not accept; `message` says which and why. */
export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

export interface GpgvCall {
  host: Host;
  keyring: string;
  /** The signed file (clearsigned), or the detached signature. */
  signature: string;
  /** The data a detached signature is over. */
  data?: string;
  /** Where gpgv writes the verified content of a clearsigned file. */
  output?: string;
  /** How the signed file is named in messages (its URI, password replaced). */
  what: string;
  signal?: AbortSignal;
}

export function gpgvArgv(call: Pick<GpgvCall, 'keyring' | 'signature' | 'data' | 'output'>): string[] {
  return [
    'gpgv',
    '--status-fd',
    '1',
    '--keyring',
    call.keyring,
    ...(call.output ? ['--output', call.output] : []),
    call.signature,
    ...(call.data ? [call.data] : []),
  ];
}

/** Run gpgv; resolves when at least one signature is good and none is bad, throws SignatureError otherwise. */
export async function verifySignature(call: GpgvCall): Promise<GoodSignature> {
  const result = await call.host.run(gpgvArgv(call), {
    allowFailure: true,
    captureStdout: true,
    readOnly: true,
    ...(call.signal ? { signal: call.signal } : {}),
  });
  // The recording host runs nothing: a dry run names the command and trusts it.
  if (!call.host.live) return { fingerprints: [], signers: [] };
  const status = readStatus(result.stdout);
  const problem = statusProblem(status, call);
  if (problem !== undefined || result.exitCode !== 0 || status.fingerprints.length === 0) {
    const detail = problem ?? `gpgv failed (exit ${result.exitCode}): ${result.lastLines.slice(-3).join(' / ')}`;
    throw new SignatureError(detail);
  }
  return { fingerprints: status.fingerprints, signers: status.signers };
}

interface Status {
  fingerprints: string[];
  signers: string[];
  bad: string[];
  missing: string[];
  expiredOrRevoked: string[];
  errors: string[];
}

function readStatus(stdout: string): Status {
  const status: Status = { fingerprints: [], signers: [], bad: [], missing: [], expiredOrRevoked: [], errors: [] };
  for (const line of stdout.split('\n')) {
    const match = /^\[GNUPG:\] ([A-Z_]+) ?(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, keyword, rest] = match;
    const first = rest.split(' ')[0];
    if (keyword === 'VALIDSIG') status.fingerprints.push(rest.split(' ').at(-1) ?? first);
    else if (keyword === 'GOODSIG') status.signers.push(rest.slice(first.length + 1));
    else if (keyword === 'BADSIG') status.bad.push(first);
    else if (keyword === 'NO_PUBKEY') status.missing.push(first);
    else if (keyword === 'EXPKEYSIG' || keyword === 'REVKEYSIG' || keyword === 'EXPSIG') {
      status.expiredOrRevoked.push(`${first} (${keyword === 'REVKEYSIG' ? 'revoked key' : 'expired'})`);
    } else if (keyword === 'ERRSIG' || keyword === 'NODATA') status.errors.push(keyword);
  }
  status.fingerprints = [...new Set(status.fingerprints)];
  return status;
}

function statusProblem(status: Status, call: GpgvCall): string | undefined {
  if (status.bad.length) {
    return `the signature of ${call.what} by key ${status.bad.join(', ')} is BAD: the file was changed after it was signed`;
  }
  if (status.fingerprints.length > 0) return undefined;
  if (status.missing.length) {
    const keys = status.missing.join(', ');
    return `${call.what} is signed by key ${keys}, which the keyring ${call.keyring} does not hold`;
  }
  if (status.expiredOrRevoked.length) {
    return `${call.what} is signed by key ${status.expiredOrRevoked.join(', ')}; no valid signature by a key of ${call.keyring}`;
  }
  if (status.errors.includes('NODATA')) return `${call.what} holds no OpenPGP signature`;
  return undefined;
}
