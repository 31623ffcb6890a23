/**
 * Credentials in URIs, in one place: which part of a URI is the user and the
 * password, the URI without them, the HTTP Basic header, rsync's
 * RSYNC_PASSWORD, the URI for display, and the strings to mask in any text.
 *
 * Forms:
 * - `scheme://[user[:password]@]host[:port]/path` (http:, https:, rsync:, …):
 *   the user information ends at the last `@` before the path — the first
 *   `/`, `?`, `#` or `\` after `//` in http(s) URLs, as URL parsers read them;
 *   the first `/` elsewhere, as rsync reads `rsync://` — and the password is
 *   percent-decoded before use.
 * - `[user[:password]@]host::module/path`, rsync's daemon form: the password
 *   is used as written (rsync itself cannot take one there, so it is passed in
 *   RSYNC_PASSWORD like the `rsync://` one).
 * - `[user@]host:path`, an ssh target: a user, never a password (ssh asks for
 *   none; keys and `~/.ssh/config` authenticate).
 *
 * For display and masking the reading is wider on purpose: a password with a
 * raw `/`, `?`, `#` or `@` in it makes an ambiguous URI, and there the text up
 * to the URI's last `@` counts as the password. At worst part of a path is
 * hidden too; a password never shows.
 */

export interface UriCredentials {
  /** The user as written (percent-encoding kept), when the URI names one. */
  user?: string;
  /** The password as it is used: percent-decoded in `scheme://` URIs, as written in rsync's daemon form. */
  password?: string;
  /** The URI without the password, the user kept: what rsync is given. */
  withoutPassword: string;
  /** The URI without user and password: what an HTTP client requests. */
  withoutUserinfo: string;
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
/** The schemes read as URLs for use; anything else with `//` may be `user://pw@host::module`. */
const URL_SCHEME = /^(?:https?|rsync|file|ftp):\/\//i;
/** `…@host::`: rsync's daemon form; the host has no `@`, `:` or `/` (or is an [IPv6] literal). */
const DAEMON = /^(.*)@([^@:/[\]]+|\[[^\]]*\])::/s;
const REDACTED = '***';

interface Userinfo {
  /** Where the user information starts and ends (the `@` is at `end`). */
  start: number;
  end: number;
  /** Index of the `:` between user and password, or -1. */
  colon: number;
}

/** The user information as URL parsers and rsync read it. */
function strictUserinfo(uri: string): Userinfo | undefined {
  const scheme = URL_SCHEME.exec(uri);
  if (scheme) {
    const start = scheme[0].length;
    const rest = uri.slice(start);
    const authorityEnd = rest.search(/^https?:/i.test(uri) ? /[/?#\\]/ : /\//);
    const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
    const at = authority.lastIndexOf('@');
    if (at < 0) return undefined;
    return { start, end: start + at, colon: colonIn(uri, start, start + at) };
  }
  const daemon = DAEMON.exec(uri);
  if (daemon) return { start: 0, end: daemon[1].length, colon: colonIn(uri, 0, daemon[1].length) };
  return sshUserinfo(uri);
}

/** The wider reading, for display and masking: up to the last `@` of the URI. */
function wideUserinfo(uri: string): Userinfo | undefined {
  const scheme = SCHEME.exec(uri);
  const daemon = DAEMON.exec(uri);
  const asDaemon: Userinfo | undefined = daemon
    ? { start: 0, end: daemon[1].length, colon: colonIn(uri, 0, daemon[1].length) }
    : undefined;
  if (!scheme) return strictUserinfo(uri);
  const start = scheme[0].length;
  const at = uri.lastIndexOf('@');
  const asUrl: Userinfo | undefined = at < start ? undefined : { start, end: at, colon: colonIn(uri, start, at) };
  // `name://…@host::module` could be either: hide what both would.
  if (asDaemon && asDaemon.colon >= 0) {
    const colon = asUrl && asUrl.colon >= 0 ? Math.min(asUrl.colon, asDaemon.colon) : asDaemon.colon;
    return { start: 0, end: Math.max(asUrl?.end ?? 0, asDaemon.end), colon };
  }
  return asUrl;
}

/** `user@host:path`: the user ends at the last `@` before the first `:`; it has no password. */
function sshUserinfo(uri: string): Userinfo | undefined {
  const colon = uri.indexOf(':');
  if (colon < 0 || uri.slice(0, colon).includes('/')) return undefined;
  const at = uri.lastIndexOf('@', colon);
  return at < 0 ? undefined : { start: 0, end: at, colon: -1 };
}

function colonIn(uri: string, start: number, end: number): number {
  const colon = uri.indexOf(':', start);
  return colon >= 0 && colon < end ? colon : -1;
}

function rawPassword(uri: string, info: Userinfo | undefined): string | undefined {
  return info && info.colon >= 0 ? uri.slice(info.colon + 1, info.end) : undefined;
}

/** Percent-decode what is validly encoded; keep the rest as written (`%zz`, a lone `%`). */
export function percentDecode(text: string): string {
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      // Not UTF-8: decode byte by byte where it is ASCII, keep the others.
      return run.replace(/%([0-7][0-9A-Fa-f])/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    }
  });
}

/** The user and password of a URI, and the URI without them. */
export function uriCredentials(uri: string): UriCredentials {
  const info = strictUserinfo(uri);
  if (!info) return { withoutPassword: uri, withoutUserinfo: uri };
  const userEnd = info.colon >= 0 ? info.colon : info.end;
  const user = uri.slice(info.start, userEnd);
  const raw = rawPassword(uri, info);
  const host = uri.slice(info.end + 1);
  const prefix = uri.slice(0, info.start);
  return {
    user,
    ...(raw === undefined ? {} : { password: SCHEME.test(uri) ? percentDecode(raw) : raw }),
    withoutPassword: `${prefix}${user}@${host}`,
    withoutUserinfo: `${prefix}${host}`,
  };
}

/** The URI with its password replaced by `***`, for logs and messages. */
export function redactUri(uri: string): string {
  const info = wideUserinfo(uri);
  if (!info || info.colon < 0) return uri;
  return `${uri.slice(0, info.colon + 1)}${REDACTED}${uri.slice(info.end)}`;
}

/**
 * Every form in which the URI's password could surface in a message: as
 * written, percent-decoded, and as a URL parser re-encodes it (`@` → `%40`),
 * under the strict and the wide reading (ending at each `@` the wide one
 * spans). Empty when there is no password.
 */
export function secretVariants(uri: string): string[] {
  const variants = new Set<string>();
  const strict = rawPassword(uri, strictUserinfo(uri));
  const wide = rawPassword(uri, wideUserinfo(uri));
  // Where the readings differ, the password may end at any '@' the wide one spans.
  const candidates =
    wide === undefined || wide === strict ? [] : wide.split('@').map((_, i, parts) => parts.slice(0, i + 1).join('@'));
  for (const raw of [strict, wide, ...candidates]) {
    if (raw === undefined) continue;
    variants.add(raw);
    variants.add(percentDecode(raw));
  }
  try {
    const parsed = new URL(uri);
    if (parsed.password) {
      variants.add(parsed.password);
      variants.add(percentDecode(parsed.password));
    }
  } catch {
    // Not a URL: the readings above are all there is.
  }
  variants.delete('');
  return [...variants].sort((a, b) => b.length - a.length);
}

/** The secret variants of several URIs, longest first. */
export function secretsOf(uris: Iterable<string>): string[] {
  const all = new Set<string>();
  for (const uri of uris) for (const secret of secretVariants(uri)) all.add(secret);
  return [...all].sort((a, b) => b.length - a.length);
}

/** `text` with every occurrence of each secret replaced by `***` (longest first, so none is left half-masked). */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  return [...secrets]
    .filter((secret) => secret !== '')
    .sort((a, b) => b.length - a.length)
    .reduce((result, secret) => result.split(secret).join(REDACTED), text);
}

/** An HTTP URL without its credentials, and the Basic `Authorization` value they make (RFC 7617). */
export function basicAuth(uri: string): { url: string; authorization?: string } {
  const { user, password, withoutUserinfo } = uriCredentials(uri);
  if (user === undefined && password === undefined) return { url: uri };
  const credentials = `${percentDecode(user ?? '')}:${password ?? ''}`;
  return { url: withoutUserinfo, authorization: `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}` };
}

/**
 * rsync's view of a source or target: the URI without its password, and the
 * variables that carry the password (`RSYNC_PASSWORD`, empty without one).
 * rsync logs its command line, so a URI whose password cannot be told from
 * its path (a raw `/` in it) is refused rather than passed on.
 */
export function rsyncCredentials(uri: string): { uri: string; env: { RSYNC_PASSWORD?: string } } {
  const { password, withoutPassword } = uriCredentials(uri);
  if (ambiguous(uri)) {
    throw new Error(
      `the user and password of ${redactUri(uri)} cannot be told from its path: ` +
        `write a '/' in the password as %2F (or keep '@' out of the path)`,
    );
  }
  if (password === undefined) return { uri, env: {} };
  return { uri: withoutPassword, env: { RSYNC_PASSWORD: password } };
}

/** No password (or an empty one) before the first `/`, but a `:` there and an `@` after it: `rsync://user:pa/ss@host/`. */
function ambiguous(uri: string): boolean {
  const strict = rawPassword(uri, strictUserinfo(uri));
  if (strict !== undefined && strict !== '') return false;
  const wide = wideUserinfo(uri);
  if (!wide || wide.colon < 0 || rawPassword(uri, wide) === strict) return false;
  const slash = uri.indexOf('/', wide.start);
  return slash < 0 || wide.colon < slash;
}

/**
 * Where a URI starts in a word of other text (`url=https://…` in kernel
 * arguments too, and rsync's `…@host::…` after a `=`), or -1. Scanned by hand,
 * not with a regular expression: a long value must not take quadratic time.
 */
function uriStart(word: string): number {
  const separator = word.indexOf('://');
  if (separator > 0) {
    let start = separator;
    while (start > 0 && /[A-Za-z0-9+.-]/.test(word[start - 1])) start -= 1;
    while (start < separator && !/[A-Za-z]/.test(word[start])) start += 1;
    if (start < separator) return start;
  }
  const at = word.indexOf('@');
  if (at >= 0 && word.includes('::', at)) return word.lastIndexOf('=', at) + 1;
  return -1;
}

/** `text` split into words and the spaces and quotes between them, each word with the URI it holds. */
function mapUris(text: string, onUri: (uri: string) => string): string {
  return text
    .split(/([\s'"]+)/)
    .map((word, index) => {
      if (index % 2 === 1) return word;
      const start = uriStart(word);
      return start < 0 ? word : `${word.slice(0, start)}${onUri(word.slice(start))}`;
    })
    .join('');
}

/** `text` with the password of every URI in it replaced by `***`: for values quoted in messages. */
export function redactUrisIn(text: string): string {
  return mapUris(text, (uri) => redactUri(uri));
}

/** The secret variants of every URI inside `text`, longest first. */
export function secretsInText(text: string): string[] {
  const uris: string[] = [];
  mapUris(text, (uri) => (uris.push(uri), uri));
  return secretsOf(uris);
}
