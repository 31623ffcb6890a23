import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { RegistryCredentials } from './oci-registry.js';

/**
 * The credentials `docker login` saved for a registry: `auths` of
 * `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), by the
 * registry's `host[:port]` or its URL forms; `auth` (base64 `user:password`)
 * or `username` and `password`. Credential helpers (`credsStore`,
 * `credHelpers`) are not run: undefined then, and for a missing file.
 */
export async function dockerConfigCredentials(
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RegistryCredentials | undefined> {
  const file = join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    config = JSON.parse(text) as typeof config;
  } catch (error) {
    // Never the text: it holds credentials.
    throw new Error(`${file} is not JSON (${(error as Error).name})`);
  }
  const auths = config.auths ?? {};
  const key = Object.keys(auths).find((name) => registryOf(name) === registry.toLowerCase());
  const entry = key === undefined ? undefined : auths[key];
  if (!entry) return undefined;
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}

/** `https://host:5000/v1/` → `host:5000`; Docker Hub's index URL → `docker.io`. */
function registryOf(name: string): string {
  const host = name
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}
