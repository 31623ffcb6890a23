import { HttpClient } from '@actions/http-client';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * A token from OpenStack's identity service (Keystone v3), as the
 * `openstack` client gets one: a user's password scoped to a project, or an
 * application credential. The credentials come from the usual OS_*
 * variables or an entry of clouds.yaml; the password, the secret and the
 * token are never logged.
 */
export type KeystoneCredentials =
  | {
      method: 'password';
      authUrl: string;
      username: string;
      password: string;
      userDomain: string;
      projectName?: string;
      projectDomain: string;
    }
  | { method: 'application_credential'; authUrl: string; id: string; secret: string };

/** The credentials the OS_* variables give; undefined without OS_AUTH_URL (a service without Keystone). */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): KeystoneCredentials | undefined {
  const authUrl = env.OS_AUTH_URL?.trim();
  if (!authUrl) return undefined;
  if (env.OS_APPLICATION_CREDENTIAL_ID && env.OS_APPLICATION_CREDENTIAL_SECRET) {
    return {
      method: 'application_credential',
      authUrl,
      id: env.OS_APPLICATION_CREDENTIAL_ID,
      secret: env.OS_APPLICATION_CREDENTIAL_SECRET,
    };
  }
  const missing = ['OS_USERNAME', 'OS_PASSWORD'].filter((name) => !env[name]);
  if (missing.length) {
    throw new Error(
      `OS_AUTH_URL is set, but ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not ` +
        '(or OS_APPLICATION_CREDENTIAL_ID and OS_APPLICATION_CREDENTIAL_SECRET)',
    );
  }
  return {
    method: 'password',
    authUrl,
    username: env.OS_USERNAME as string,
    password: env.OS_PASSWORD as string,
    userDomain: env.OS_USER_DOMAIN_NAME || 'Default',
    projectName: env.OS_PROJECT_NAME || undefined,
    projectDomain: env.OS_PROJECT_DOMAIN_NAME || 'Default',
  };
}

/** Where the OpenStack clients look for clouds.yaml, in their order. */
export function cloudsYamlFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    ...(env.OS_CLIENT_CONFIG_FILE ? [env.OS_CLIENT_CONFIG_FILE] : []),
    join(process.cwd(), 'clouds.yaml'),
    join(homedir(), '.config', 'openstack', 'clouds.yaml'),
    '/etc/openstack/clouds.yaml',
  ];
}

type CloudAuth = Record<string, string | undefined>;

/**
 * The credentials of a clouds.yaml entry (`clouds: NAME: auth: …`, `auth_type`
 * v3applicationcredential or password), from the first file that has it.
 */
export function credentialsFromCloud(name: string, files = cloudsYamlFiles()): KeystoneCredentials {
  for (const file of files.filter((path) => existsSync(path))) {
    const clouds = (parseYaml(readFileSync(file, 'utf8')) as { clouds?: Record<string, unknown> } | null)?.clouds;
    const cloud = clouds?.[name] as { auth?: CloudAuth; auth_type?: string } | undefined;
    if (!cloud) continue;
    const auth = cloud.auth ?? {};
    if (!auth.auth_url) throw new Error(`the cloud ${name} in ${file} has no auth.auth_url`);
    if (cloud.auth_type === 'v3applicationcredential' || auth.application_credential_id) {
      if (!auth.application_credential_id || !auth.application_credential_secret)
        throw new Error(
          `the cloud ${name} in ${file} needs application_credential_id and application_credential_secret`,
        );
      return {
        method: 'application_credential',
        authUrl: auth.auth_url,
        id: auth.application_credential_id,
        secret: auth.application_credential_secret,
      };
    }
    if (!auth.username || !auth.password) throw new Error(`the cloud ${name} in ${file} needs username and password`);
    return {
      method: 'password',
      authUrl: auth.auth_url,
      username: auth.username,
      password: auth.password,
      userDomain: auth.user_domain_name ?? 'Default',
      projectName: auth.project_name,
      projectDomain: auth.project_domain_name ?? 'Default',
    };
  }
  throw new Error(`no cloud named ${name} in clouds.yaml (looked in ${files.join(', ')})`);
}

/** What no message may show of the credentials. */
export function keystoneSecrets(credentials: KeystoneCredentials | undefined): string[] {
  if (!credentials) return [];
  return [credentials.method === 'password' ? credentials.password : credentials.secret];
}

/** The body of `POST /v3/auth/tokens` for the credentials. */
export function tokenRequest(credentials: KeystoneCredentials): unknown {
  if (credentials.method === 'application_credential') {
    const { id, secret } = credentials;
    return { auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } } };
  }
  const { username, password, userDomain, projectName, projectDomain } = credentials;
  const user = { name: username, domain: { name: userDomain }, password };
  return {
    auth: {
      identity: { methods: ['password'], password: { user } },
      ...(projectName ? { scope: { project: { name: projectName, domain: { name: projectDomain } } } } : {}),
    },
  };
}

/** `https://keystone:5000`, `…/v3` or `…/v3/`: the tokens URL. */
export function tokensUrl(authUrl: string): string {
  const base = authUrl.replace(/\/+$/, '');
  return `${/\/v3$/.test(base) ? base : `${base}/v3`}/auth/tokens`;
}

/** A token for the credentials (the X-Subject-Token of a 201), and the project it is scoped to. */
export async function keystoneToken(credentials: KeystoneCredentials): Promise<{ token: string; projectId?: string }> {
  const http = new HttpClient('image-factory');
  const url = tokensUrl(credentials.authUrl);
  const response = await http.post(url, JSON.stringify(tokenRequest(credentials)), {
    'Content-Type': 'application/json',
    Accept: 'application/json',
  });
  const status = response.message.statusCode ?? 0;
  // The body can echo the request; its text is not repeated.
  const body = await response.readBody();
  const token = response.message.headers['x-subject-token'];
  if (status !== 201 || typeof token !== 'string' || token === '') {
    throw new Error(`Keystone at ${url} refused the ${credentials.method} credentials (HTTP ${status})`);
  }
  let projectId: string | undefined;
  try {
    projectId = (JSON.parse(body) as { token?: { project?: { id?: string } } }).token?.project?.id;
  } catch {
    projectId = undefined;
  }
  return { token, ...(projectId ? { projectId } : {}) };
}
