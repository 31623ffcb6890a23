import type { Host } from '../host/host.js';

/**
 * OpenPGP signatures checked by gpgv (GnuPG's verify-only tool, which trusts
 * exactly the keys of the keyring it is given): this module only builds its
 * command line and reads its machine-readable status lines (`--status-fd 1`,
 * GnuPG's doc/DETAILS). It parses no OpenPGP data itself.
 */

/** What gpgv vouched for. */
export interface GoodSignature {
  /** Fingerprints of the signing (sub)keys' primary keys, as VALIDSIG names them, of the good signatures only. */
  fingerprints: string[];
  /** The user IDs of the good signatures. */
  signers: string[];
  /** The file's other signatures, which do not count, each saying why (`… is by an expired key (EXPKEYSIG)`). */
  refused: string[];
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
  if (!call.host.live) return { fingerprints: [], signers: [], refused: [] };
  const verdict = judgeSignatures(result.stdout, call);
  if ('problem' in verdict) throw new SignatureError(verdict.problem);
  // gpgv fails when any signature is not good; a failure that no refused signature explains is its own.
  if (verdict.fingerprints.length === 0 || (result.exitCode !== 0 && verdict.refused.length === 0)) {
    throw new SignatureError(`gpgv failed (exit ${result.exitCode}): ${result.lastLines.slice(-3).join(' / ')}`);
  }
  return verdict;
}

/** How gpgv ends each signature's check (doc/DETAILS): exactly one of these after its NEWSIG. */
type Verdict = 'GOODSIG' | 'EXPSIG' | 'EXPKEYSIG' | 'REVKEYSIG' | 'BADSIG' | 'ERRSIG';
const VERDICTS = new Set<string>(['GOODSIG', 'EXPSIG', 'EXPKEYSIG', 'REVKEYSIG', 'BADSIG', 'ERRSIG']);

/** One signature as gpgv's status lines describe it. */
interface SignatureStatus {
  verdict?: Verdict;
  /** The key ID (or fingerprint) the verdict line names. */
  key: string;
  /** The user ID, for the verdicts that carry one. */
  uid: string;
  /** The primary key's fingerprint, from VALIDSIG: gpgv checked the signature's mathematics. */
  fingerprint?: string;
  /** ERRSIG's return code: 9 is a key the keyring does not hold, 4 an algorithm gpgv does not know. */
  errorCode?: string;
}

/**
 * The signatures gpgv checked, each from its NEWSIG to the next. VALIDSIG
 * comes with every signature whose mathematics hold, also beside EXPSIG,
 * EXPKEYSIG and REVKEYSIG; only the verdict line says whether it counts.
 */
function readSignatures(stdout: string): { signatures: SignatureStatus[]; noData: boolean } {
  const signatures: SignatureStatus[] = [];
  let noData = false;
  let current: SignatureStatus | undefined;
  const start = (): SignatureStatus => {
    current = { key: '', uid: '' };
    signatures.push(current);
    return current;
  };
  for (const line of stdout.split('\n')) {
    const match = /^\[GNUPG:\] ([A-Z_]+) ?(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, keyword, rest] = match;
    const fields = rest.split(' ');
    if (keyword === 'NEWSIG') start();
    else if (VERDICTS.has(keyword)) {
      // A gpgv without NEWSIG lines: a second verdict starts a second signature.
      const signature = current === undefined || current.verdict !== undefined ? start() : current;
      signature.verdict = keyword as Verdict;
      signature.key = fields[0];
      if (keyword === 'ERRSIG') signature.errorCode = fields[5];
      else signature.uid = rest.slice(fields[0].length + 1);
    } else if (keyword === 'VALIDSIG' && current) current.fingerprint = fields.at(-1) ?? fields[0];
    else if (keyword === 'NO_PUBKEY' && current) current.errorCode = '9';
    else if (keyword === 'NODATA') noData = true;
  }
  return { signatures, noData };
}

/**
 * As apt's gpgv method judges: a signature counts only when its verdict is
 * GOODSIG (with VALIDSIG); one BADSIG refuses the file; EXPSIG, EXPKEYSIG,
 * REVKEYSIG and ERRSIG do not count, whatever VALIDSIG says beside them.
 */
function judgeSignatures(stdout: string, call: GpgvCall): GoodSignature | { problem: string } {
  const { signatures, noData } = readSignatures(stdout);
  const bad = signatures.filter((signature) => signature.verdict === 'BADSIG').map((signature) => signature.key);
  if (bad.length) {
    return {
      problem: `the signature of ${call.what} by key ${bad.join(', ')} is BAD: the file was changed after it was signed`,
    };
  }
  const good = signatures.filter((signature) => signature.verdict === 'GOODSIG' && signature.fingerprint);
  // A NEWSIG without a verdict (gpgv stopped) is gpgv's failure, told by its exit code and last lines.
  const refused = signatures
    .filter((signature) => signature.verdict !== undefined && !good.includes(signature))
    .map(refusal);
  if (good.length === 0 && noData) return { problem: `${call.what} holds no OpenPGP signature` };
  const missing = signatures.filter((signature) => signature.verdict === 'ERRSIG' && signature.errorCode === '9');
  if (good.length === 0 && missing.length > 0 && missing.length === signatures.length) {
    const keys = missing.map((signature) => signature.key).join(', ');
    return { problem: `${call.what} is signed by key ${keys}, which the keyring ${call.keyring} does not hold` };
  }
  if (good.length === 0 && refused.length > 0) {
    return {
      problem: `${call.what} has no valid signature by a key of ${call.keyring}: ${refused.join('; ')}; only a good signature (GOODSIG) by a key that has neither expired nor been revoked counts`,
    };
  }
  return {
    fingerprints: [...new Set(good.map((signature) => signature.fingerprint as string))],
    signers: good.map((signature) => signature.uid),
    refused,
  };
}

/** Why one signature does not count, naming gpgv's verdict. */
function refusal(signature: SignatureStatus): string {
  const by = `the signature by key ${signature.key}${signature.uid ? ` (${signature.uid})` : ''}`;
  switch (signature.verdict) {
    case 'REVKEYSIG':
      return `${by} is by a revoked key (REVKEYSIG)`;
    case 'EXPKEYSIG':
      return `${by} is by an expired key (EXPKEYSIG)`;
    case 'EXPSIG':
      return `${by} has expired (EXPSIG)`;
    case 'ERRSIG':
      return signature.errorCode === '9'
        ? `${by} is by a key the keyring does not hold (NO_PUBKEY)`
        : `${by} could not be checked (ERRSIG, code ${signature.errorCode ?? 'none'})`;
    default:
      return `${by} was not confirmed by gpgv (no VALIDSIG)`;
  }
}
