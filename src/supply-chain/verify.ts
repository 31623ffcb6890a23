import { createHash } from 'node:crypto';
import { copyFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstallerSource } from '../config/image-spec.js';
import type { VerificationSpec } from '../config/verification-spec.js';
import { nameInList, parseChecksumList, parseReleaseFile, type ChecksumList } from '../net/checksum-list.js';
import { gpgvArgv, SignatureError, verifySignature, type GoodSignature } from '../net/gpgv.js';
import { downloadMetadata } from '../net/metadata-download.js';
import { failureReason } from '../net/retry.js';
import type { BuildContext } from '../context/build-context.js';

/** The installer files a build fetches, by role. */
export type VerifiedKey = 'linux' | 'initrd' | 'image';

/** How the checksum list was vouched for. */
export type ChainForm = 'release' | 'detached' | 'clearsigned' | 'unsigned';

/** What was verified against what: the log, the job summary and BuildResult carry it. */
export interface ChainRecord {
  form: ChainForm;
  /** The checksum list (URI with any password replaced) and the SHA-256 of the file as fetched. */
  checksums: { display: string; sha256: string };
  release?: { display: string; sha256: string; name: string };
  signature?: { display: string };
  keyring?: string;
  /** Primary key fingerprints of the good signatures. */
  fingerprints: string[];
  signers: string[];
  /** Each installer file's name in the list and the SHA-256 the list gives it. */
  files: Partial<Record<VerifiedKey, { name: string; sha256: string }>>;
}

/** The largest checksum list, signature or release file taken: the distributions' are well under 1 MiB. */
const MAX_METADATA_BYTES = 16 * 2 ** 20;

/** A link of the chain that does not hold: the build stops at the fetch step. */
export class VerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerificationError';
  }
}

/** The SHA-256 each installer file must have, and where that comes from (for messages). */
export interface ExpectedSums {
  record: ChainRecord;
  sums: Partial<Record<VerifiedKey, string>>;
  /** `SHA256SUMS <uri> (verified by InRelease <uri>, key <fpr>)`: the source of the expected sums. */
  origin: string;
}

const LABEL: Record<ChainForm, string> = {
  release: 'listed in the signed release file',
  detached: 'with a detached signature',
  clearsigned: 'clearsigned',
  unsigned: 'unsigned',
};

/**
 * Fetch the checksum list (afresh: never from the cache) and what vouches
 * for it into a private temporary folder, check the chain with gpgv, and
 * return the sums the installer files must have. The folder is removed
 * before this returns, whatever happens.
 */
export async function expectedSums(
  ctx: BuildContext,
  verification: VerificationSpec,
  sources: Array<[VerifiedKey, InstallerSource]>,
): Promise<ExpectedSums> {
  const dir = await ctx.host.makeTempDir(join(tmpdir(), 'image-factory-verify.'));
  const entry = ctx.cleanup.register({ kind: 'path', path: dir });
  try {
    const { list, record } = await verifiedList(ctx, verification, dir);
    const sums: ExpectedSums['sums'] = {};
    for (const [key, source] of sources) {
      const name = verification.names[key] ?? nameInList(sourcePath(source), sourcePath(verification.checksums));
      const found = list.lookup(name);
      if ('problem' in found) {
        const setting = key === 'image' ? 'installer_image_checksum_name' : `${key}_checksum_name`;
        throw new VerificationError(
          `the checksum list ${verification.checksums.display} ${found.problem} (the ${key} file ${source.display}); set ${setting} to its name in the list`,
        );
      }
      sums[key] = found.sha256;
      record.files[key] = { name, sha256: found.sha256 };
    }
    return { record, sums, origin: describeOrigin(record) };
  } finally {
    await ctx.cleanup.release(entry);
  }
}

/** The checksum list's entries, once whatever vouches for it has been checked. */
async function verifiedList(
  ctx: BuildContext,
  verification: VerificationSpec,
  dir: string,
): Promise<{ list: ChecksumList; record: ChainRecord }> {
  const { checksums, signature, release, keyring } = verification;
  const listPath = await fetchMetadata(ctx, checksums, join(dir, 'checksums'));
  const listBytes = await readFile(listPath);
  const record: ChainRecord = {
    form: release ? 'release' : signature ? 'detached' : keyring ? 'clearsigned' : 'unsigned',
    checksums: { display: checksums.display, sha256: sha256(listBytes) },
    keyring,
    fingerprints: [],
    signers: [],
    files: {},
  };
  let text = listBytes.toString('utf8');
  if (release && keyring) await checkRelease(ctx, verification, release, dir, record);
  else if (signature && keyring) {
    const sigPath = await fetchMetadata(ctx, signature, join(dir, 'signature'));
    record.signature = { display: signature.display };
    note(record, await signed(ctx, { keyring, signature: sigPath, data: listPath }, checksums.display));
  } else if (keyring) {
    const output = join(dir, 'checksums.verified');
    note(record, await signed(ctx, { keyring, signature: listPath, output }, checksums.display));
    // Only what the signature covers: gpgv's output, never the text around the armour.
    text = await readFile(output, 'utf8');
  }
  return { list: parseChecksumList(text), record };
}

/** The release file verified, and the checksum list's hash as the release file lists it. */
async function checkRelease(
  ctx: BuildContext,
  verification: VerificationSpec,
  release: InstallerSource,
  dir: string,
  record: ChainRecord,
): Promise<void> {
  const releasePath = await fetchMetadata(ctx, release, join(dir, 'release'));
  const output = join(dir, 'release.verified');
  const keyring = verification.keyring as string;
  note(record, await signed(ctx, { keyring, signature: releasePath, output }, release.display));
  const name = nameInList(sourcePath(verification.checksums), sourcePath(release));
  record.release = { display: release.display, sha256: sha256(await readFile(releasePath)), name };
  const listed = parseReleaseFile(await readFile(output, 'utf8')).lookup(name);
  if ('problem' in listed) throw new VerificationError(`the release file ${release.display} ${listed.problem}`);
  if (listed.sha256 !== record.checksums.sha256) {
    throw new VerificationError(
      `the checksum list ${verification.checksums.display} is not the one the release file ${release.display} lists: the release file gives ${name} the SHA-256 ${listed.sha256}, the file fetched has ${record.checksums.sha256}`,
    );
  }
}

async function signed(
  ctx: BuildContext,
  files: { keyring: string; signature: string; data?: string; output?: string },
  what: string,
): Promise<GoodSignature> {
  try {
    const good = await verifySignature({ host: ctx.host, ...files, what, signal: ctx.signal });
    for (const refused of good.refused) {
      ctx.reporter.warning(
        `${what}: ${refused} and does not count; the file is taken on its good signature by key ${good.fingerprints.join(', ')}`,
      );
    }
    return good;
  } catch (error) {
    if (error instanceof SignatureError) throw new VerificationError(error.message);
    throw error;
  }
}

function note(record: ChainRecord, good: GoodSignature): void {
  record.fingerprints.push(...good.fingerprints);
  record.signers.push(...good.signers);
}

/** One metadata file into `path`: copied, or downloaded (bounded, with the build's retries). */
async function fetchMetadata(ctx: BuildContext, source: InstallerSource, path: string): Promise<string> {
  try {
    if (source.scheme === 'file') {
      await copyFile(source.location, path);
      return path;
    }
    await downloadMetadata(source, path, {
      maxBytes: MAX_METADATA_BYTES,
      warn: (message) => ctx.reporter.warning(message),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(ctx.download ? { download: ctx.download } : {}),
    });
    return path;
  } catch (error) {
    if (ctx.signal?.aborted) throw error;
    throw new VerificationError(`cannot fetch ${source.display}: ${failureReason(error, source)}`);
  }
}

/** The path part of a source, which names it in a list (the host is not compared). */
function sourcePath(source: InstallerSource): string {
  if (source.scheme === 'file') return source.location;
  try {
    return decodeURIComponent(new URL(source.location).pathname);
  } catch {
    return source.location;
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function describeOrigin(record: ChainRecord): string {
  const list = `the checksum list ${record.checksums.display}`;
  if (record.form === 'unsigned') return `${list} (unsigned)`;
  const by = `key ${record.fingerprints.join(', ') || '(not checked)'}`;
  if (record.release) return `${list}, listed in ${record.release.display} signed by ${by}`;
  return `${list}, ${LABEL[record.form]} by ${by}`;
}

/** The chain as log lines: what a build verifies against what (dry run, golden files). */
export function describeChain(
  verification: VerificationSpec | undefined,
  sources: Array<[VerifiedKey, InstallerSource]>,
): string[] {
  if (verification === undefined) return [];
  const { checksums, signature, release, keyring } = verification;
  const names = sources.map(
    ([key, source]) => `${key} as ${verification.names[key] ?? nameInList(sourcePath(source), sourcePath(checksums))}`,
  );
  const lines = [`verify: the installer files against the checksum list ${checksums.display}: ${names.join(', ')}`];
  if (release && keyring) {
    const name = nameInList(sourcePath(checksums), sourcePath(release));
    lines.push(`verify: the checksum list's SHA-256 as the release file ${release.display} lists ${name}`);
    lines.push(`verify: ${formatGpgv({ keyring, signature: release.display, output: '<verified release>' })}`);
  } else if (signature && keyring) {
    lines.push(`verify: ${formatGpgv({ keyring, signature: signature.display, data: checksums.display })}`);
  } else if (keyring) {
    lines.push(`verify: ${formatGpgv({ keyring, signature: checksums.display, output: '<verified list>' })}`);
  } else lines.push('verify: the checksum list is not signed (no installer-keyring): it is taken as fetched');
  return lines;
}

function formatGpgv(call: { keyring: string; signature: string; data?: string; output?: string }): string {
  return gpgvArgv(call).join(' ');
}

/** The chain in one log line, after it held. */
export function describeRecord(record: ChainRecord): string {
  const files = Object.entries(record.files).map(([key, file]) => `${key} ${file.name} ${file.sha256}`);
  const signers = record.signers.length ? ` (${record.signers.join('; ')})` : '';
  return `verified: ${describeOrigin(record)}${signers}, SHA-256 ${record.checksums.sha256}: ${files.join(', ')}`;
}
