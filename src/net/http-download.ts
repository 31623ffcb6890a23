import { HttpClient } from '@actions/http-client';
import { createHash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { formatBytes, formatDuration } from '../common/units.js';
import { basicAuth } from '../common/credentials.js';

/**
 * One HTTP(S) download into a file, one attempt (the caller retries): a
 * conditional GET that answers 304, abortable by a signal, failing when no
 * data arrives for `stallTimeoutMs`, when the body is larger than `maxBytes`
 * or the whole takes longer than `deadlineMs`, reporting progress, and going
 * through the proxy that HTTPS_PROXY / HTTP_PROXY name unless NO_PROXY
 * exempts the host (the agent comes from @actions/http-client, as the
 * runner's own tools use it). Credentials in the URL travel as a Basic
 * header, and not to another origin after a redirect. A failed attempt
 * leaves no file at the destination, so the next one starts clean.
 */
export async function downloadFile(
  uri: string,
  destination: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const { url, authorization } = basicAuth(uri);
  let current = new URL(url);
  const origin = current.origin;
  const deadline =
    options.deadlineMs === undefined ? undefined : { at: Date.now() + options.deadlineMs, ms: options.deadlineMs };
  for (let redirects = 0; ; redirects += 1) {
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...options.headers };
    if (authorization && current.origin === origin) headers.Authorization = authorization;
    const outcome = await attempt(current, destination, headers, options, deadline);
    if (!('location' in outcome)) return outcome;
    if (redirects >= MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
    current = new URL(outcome.location, current);
    if (current.protocol !== 'http:' && current.protocol !== 'https:')
      throw new Error(`redirected to an unsupported scheme '${current.protocol}'`);
  }
}

export interface DownloadOptions {
  /** Request headers: the conditional ones (If-None-Match, If-Modified-Since). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Fail with a TransferError when nothing arrives for this long (default 60 s). */
  stallTimeoutMs?: number;
  /**
   * Fail with a TooLargeError when the body is larger: at once when Content-Length
   * says so, else as soon as more has arrived (default: no limit).
   */
  maxBytes?: number;
  /** Fail with a DeadlineError when the whole download, redirects included, takes longer (default: none). */
  deadlineMs?: number;
  /** Called when the body starts (bytes 0) and as it arrives; `total` from Content-Length. */
  onProgress?: (bytes: number, total: number | undefined) => void;
  /** Mode of the file created at `destination` (default 0644). */
  mode?: number;
}

export type DownloadResult =
  /** 304 Not Modified: nothing was written. */
  | { status: 304 }
  /** The body was written to the destination, which did not exist before. */
  | { status: 200; bytes: number; sha256: string; etag?: string; lastModified?: string };

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    statusText: string,
  ) {
    super(
      status === 404
        ? `not found (HTTP 404${statusText ? ` ${statusText}` : ''})`
        : `the server answered HTTP ${status}${statusText ? ` ${statusText}` : ''}`,
    );
    this.name = 'HttpStatusError';
  }
}

/** The connection broke or stalled: worth another try. */
export class TransferError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TransferError';
  }
}

/** The body is larger than the caller accepts: another try would fetch the same. */
export class TooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TooLargeError';
  }
}

/** The download took longer than its deadline: the server sends too slowly to wait for. */
export class DeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeadlineError';
  }
}

const USER_AGENT = 'image-factory';
const MAX_REDIRECTS = 10;
const DEFAULT_STALL_TIMEOUT_MS = 60_000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * 5xx, 408, 429, a broken or refused connection, a stall: worth another try.
 * Other 4xx, a body over the limit, a missed deadline and local errors: not.
 */
export function isTransientHttpFailure(error: unknown): boolean {
  if (error instanceof HttpStatusError) return error.status >= 500 || error.status === 408 || error.status === 429;
  if (error instanceof TransferError) return true;
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== undefined && TRANSIENT_CODES.has(code)) return true;
  }
  return false;
}

/** The proxy-aware agent for a URL: a CONNECT tunnel through HTTP(S)_PROXY, or a plain agent. */
function agentFor(url: URL): http.Agent {
  // One client per request: HttpClient keeps one agent, whatever the URL's scheme.
  return new HttpClient(USER_AGENT).getAgent(url.href);
}

type Attempt = DownloadResult | { location: string };

/** What ends a download that goes on too long: no data for the stall timeout, or the deadline passed. */
class Watchdog {
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly deadlineTimer: NodeJS.Timeout | undefined;
  private received = 0;

  constructor(
    private readonly fail: (error: Error) => void,
    private readonly stallMs: number,
    deadline: Deadline | undefined,
  ) {
    this.fed(0);
    if (deadline === undefined) return;
    const missed = (): Error =>
      new DeadlineError(
        `not finished after ${formatDuration(deadline.ms)}, the longest this download may take (${formatBytes(this.received)} had arrived)`,
      );
    this.deadlineTimer = setTimeout(() => fail(missed()), Math.max(deadline.at - Date.now(), 0));
  }

  /** Data arrived: `bytes` of the body so far. */
  fed(bytes: number): void {
    this.received = bytes;
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(
      () => this.fail(new TransferError(`no data for ${formatDuration(this.stallMs)}`)),
      this.stallMs,
    );
  }

  stop(): void {
    clearTimeout(this.stallTimer);
    clearTimeout(this.deadlineTimer);
  }
}

/** When the whole download must be done (a time from Date.now), and the `deadlineMs` it came from. */
interface Deadline {
  at: number;
  ms: number;
}

function attempt(
  url: URL,
  destination: string,
  headers: Record<string, string>,
  options: DownloadOptions,
  deadline: Deadline | undefined,
): Promise<Attempt> {
  const signal = options.signal;
  return new Promise<Attempt>((resolve, reject) => {
    let settled = false;
    const finish = (error: unknown, value?: Attempt): void => {
      if (settled) return;
      settled = true;
      watchdog.stop();
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve(value as Attempt);
      else reject(error);
    };
    const module = url.protocol === 'https:' ? https : http;
    const request = module.request(url, { method: 'GET', headers, agent: agentFor(url) });
    // While the body is written, the file must be closed (and removed) before anyone hears of the failure.
    let receiving = false;
    let failure: Error | undefined;
    const fail = (error: Error): void => {
      failure ??= error;
      request.destroy(error);
      if (!receiving) finish(error);
    };
    const watchdog = new Watchdog(fail, options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS, deadline);
    function onAbort(): void {
      fail(Object.assign(new Error('the download was interrupted'), { name: 'AbortError' }));
    }
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', fail);
    request.on('response', (response) => {
      const answer = bodylessAnswer(response);
      if (answer) {
        response.resume();
        return finish(answer.error, answer.value);
      }
      receiving = true;
      receiveBody(response, destination, (bytes) => watchdog.fed(bytes), options).then(
        (value) => finish(failure, value),
        (error: unknown) => {
          // The rest of a body refused before its end (too large) is not read.
          request.destroy();
          finish(failure ?? error);
        },
      );
    });
    request.end();
  });
}

/** What a response without a body to keep means: not modified, a redirect, or a failed request. */
function bodylessAnswer(response: http.IncomingMessage): { value?: Attempt; error?: Error } | undefined {
  const status = response.statusCode ?? 0;
  if (status === 304) return { value: { status: 304 } };
  const location = response.headers.location;
  if (REDIRECTS.has(status) && location) return { value: { location } };
  if (status !== 200) return { error: new HttpStatusError(status, response.statusMessage ?? '') };
  return undefined;
}

/** A 200's body into the file, checked against Content-Length and the limit; the validators for the next request. */
async function receiveBody(
  response: http.IncomingMessage,
  destination: string,
  onData: (bytes: number) => void,
  options: DownloadOptions,
): Promise<Attempt> {
  const lengthHeader = response.headers['content-length'];
  const total = lengthHeader !== undefined && /^[0-9]+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  if (options.maxBytes !== undefined && total !== undefined && total > options.maxBytes) {
    throw new TooLargeError(
      `the server announced ${formatBytes(total)} (Content-Length ${total}), more than the ${formatBytes(options.maxBytes)} accepted`,
    );
  }
  const file = await open(destination, 'wx', options.mode ?? 0o644);
  try {
    const { bytes, sha256 } = await receive(response, file, total, onData, options).finally(() => file.close());
    if (total !== undefined && bytes !== total) {
      throw new TransferError(`the connection closed after ${formatBytes(bytes)} of ${formatBytes(total)}`);
    }
    const etag = response.headers.etag;
    const lastModified = response.headers['last-modified'];
    return { status: 200, bytes, sha256, ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
  } catch (error) {
    // Part of a body is nobody's file: the next attempt creates the destination anew.
    await rm(destination, { force: true });
    throw error;
  }
}

/** The body into `file`, hashed on the way, stopped once it passes the limit. */
async function receive(
  response: http.IncomingMessage,
  file: FileHandle,
  total: number | undefined,
  onData: (bytes: number) => void,
  options: DownloadOptions,
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  options.onProgress?.(0, total);
  const closedEarly = (cause?: unknown): TransferError =>
    new TransferError(
      `the connection closed after ${formatBytes(bytes)}${total === undefined ? '' : ` of ${formatBytes(total)}`}`,
      { cause },
    );
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      onData(bytes + chunk.length);
      if (options.maxBytes !== undefined && bytes + chunk.length > options.maxBytes) {
        throw new TooLargeError(
          `more than ${formatBytes(options.maxBytes)} arrived, the most accepted; the download was stopped there`,
        );
      }
      await file.write(chunk);
      hash.update(chunk);
      bytes += chunk.length;
      options.onProgress?.(bytes, total);
    }
  } catch (error) {
    // Node says "aborted" when the server hangs up mid-body.
    if ((error as NodeJS.ErrnoException).code === 'ECONNRESET') throw closedEarly(error);
    throw error;
  }
  if (!response.complete) throw closedEarly();
  return { bytes, sha256: hash.digest('hex') };
}
