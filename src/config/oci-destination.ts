import { isAbsolute } from 'node:path';
import { parseBoolean } from './configparser.js';
import { UsageError } from './usage-error.js';

/**
 * An `upload_type = oci` destination: an OCI distribution registry, the
 * repository the images are pushed to and the tag they get.
 *
 *     [registry]
 *     upload_type = oci
 *     upload_target = registry.example.org/images/debian:stable
 *     oci-containerdisk = yes      ; also a KubeVirt containerDisk, tagged <tag>-containerdisk
 *     username = builder           ; else ~/.docker/config.json ($DOCKER_CONFIG), else anonymous
 *     password = ...
 *     ca = /etc/ssl/private-ca.pem ; besides the system's CAs and NODE_EXTRA_CA_CERTS
 *     insecure = yes               ; plain http to a registry that is not on this machine
 */
export interface OciDestination {
  /** `host[:port]`, as `docker login` and the Docker config file name it. */
  registry: string;
  repository: string;
  /** Unset: the image's date. */
  tag?: string;
  scheme: 'https' | 'http';
  /** A PEM file of CA certificates trusted for this registry. */
  ca?: string;
  username?: string;
  password?: string;
  containerDisk: boolean;
}

/** The keys of an oci destination's section, besides upload_type, upload_target and post-upload-command. */
export const OCI_KEYS = ['username', 'password', 'ca', 'insecure', 'oci-containerdisk'] as const;

/** A repository path component, as the distribution spec defines it. */
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** A host name or IPv4 address, or an [IPv6] literal, with an optional port. */
const REGISTRY =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

export interface OciReference {
  registry: string;
  repository: string;
  tag?: string;
  /** The scheme the target names (`http://…`, `https://…`), if it names one. */
  scheme?: 'https' | 'http';
}

/** `[http[s]://]REGISTRY/REPOSITORY[:TAG]`, or why it is not one. */
export function parseOciReference(text: string): OciReference | { problem: string } {
  const scheme = /^(https?):\/\//i.exec(text);
  const rest = scheme ? text.slice(scheme[0].length) : text;
  const slash = rest.indexOf('/');
  if (slash <= 0) return { problem: 'it names no registry (REGISTRY/REPOSITORY[:TAG], e.g. ghcr.io/org/images)' };
  const registry = rest.slice(0, slash);
  if (!REGISTRY.test(registry)) return { problem: `'${registry}' is not a registry host[:port]` };
  let path = rest.slice(slash + 1);
  if (path.includes('@')) return { problem: 'a digest (@sha256:…) names what is there; push to a tag' };
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) return { problem: `'${tag}' is not a tag (letters, digits, '_', '.', '-'; at most 128)` };
  }
  if (!REPOSITORY.test(path) || registry.length + path.length >= 255) {
    return { problem: `'${path}' is not a repository (lower-case components separated by '/')` };
  }
  return {
    registry,
    repository: path,
    ...(tag === undefined ? {} : { tag }),
    ...(scheme ? { scheme: scheme[1].toLowerCase() as 'https' | 'http' } : {}),
  };
}

/** A registry on this machine: plain http is allowed there without `insecure`. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry
    .replace(/:[0-9]+$/, '')
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.[0-9]+\.[0-9]+\.[0-9]+$/.test(host);
}

/**
 * An oci section's settings, checked. `get` reads a key of the section,
 * `where` names it for a message (`file:line: [section] key`).
 */
export function resolveOciDestination(
  target: string,
  get: (key: string) => string | undefined,
  where: (key: string) => string,
  formats: readonly string[],
): OciDestination {
  const reference = parseOciReference(target);
  if ('problem' in reference) {
    throw new UsageError(
      `${where('upload_target')}: '${target}' is not an OCI reference: ${reference.problem}. ` +
        'Accepted: [http[s]://]REGISTRY/REPOSITORY[:TAG].',
    );
  }
  const flag = (key: string): boolean => {
    const value = get(key);
    if (value === undefined) return false;
    const parsed = parseBoolean(value);
    if (parsed === undefined) throw new UsageError(`${where(key)}: '${value}' is not yes or no.`);
    return parsed;
  };
  const insecure = flag('insecure');
  const scheme = reference.scheme ?? 'https';
  if (scheme === 'http' && !insecure && !isLoopbackRegistry(reference.registry)) {
    throw new UsageError(
      `${where('upload_target')}: plain http to ${reference.registry}, which is not on this machine, ` +
        `would send the images and credentials unprotected; use https, or say 'insecure = yes' in the section.`,
    );
  }
  const containerDisk = flag('oci-containerdisk');
  if (containerDisk && !formats.includes('qcow2') && !formats.includes('raw')) {
    throw new UsageError(
      `${where('oci-containerdisk')}: a KubeVirt containerDisk holds a qcow2 or raw image; ` +
        `the build makes ${formats.join(', ')}. Add qcow2 to format.`,
    );
  }
  const ca = get('ca')?.trim();
  if (ca !== undefined && !isAbsolute(ca)) throw new UsageError(`${where('ca')}: '${ca}' is not an absolute path.`);
  const username = get('username')?.trim();
  const password = get('password');
  if ((username === undefined) !== (password === undefined)) {
    throw new UsageError(
      `${where(username === undefined ? 'password' : 'username')}: give username and password both.`,
    );
  }
  return {
    registry: reference.registry,
    repository: reference.repository,
    ...(reference.tag === undefined ? {} : { tag: reference.tag }),
    scheme,
    ...(ca ? { ca } : {}),
    ...(username === undefined ? {} : { username, password }),
    containerDisk,
  };
}
