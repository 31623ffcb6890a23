import { execFile } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, spawnServer, waitForPort, type Teardown } from './rsync-daemon.js';

const run = promisify(execFile);

export interface TestRegistry {
  /** `127.0.0.1:PORT`. */
  registry: string;
  port: number;
  username: string;
  password: string;
  /** The CA that signed the registry's certificate (PEM). */
  caFile: string;
  /** A folder with the CA as `ca.crt`: skopeo's --src-cert-dir. */
  certDir: string;
  /** Everything the registry printed so far, its access log (`"PUT /v2/… HTTP/1.1" 201`) included. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1
 * with TLS, its certificate signed by a CA made here with openssl, and
 * htpasswd (bcrypt) basic authentication; storage in a temporary folder.
 */
export async function startTestRegistry(
  t: Teardown,
  options: { auth?: 'htpasswd' | 'token' } = {},
): Promise<TestRegistry & { tokenRequests: () => number }> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-registry-'));
  const certDir = join(dir, 'certs');
  await mkdir(certDir);
  const caFile = join(certDir, 'ca.crt');
  await makeCertificates(dir, caFile);
  const username = 'builder';
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const { stdout } = await run('htpasswd', ['-Bbn', username, password]);
  await writeFile(join(dir, 'htpasswd'), stdout);
  const port = await freePort();
  const token = options.auth === 'token' ? await startTokenService(t, dir, { username, password }) : undefined;
  const auth = token
    ? [
        '  token:',
        `    realm: ${token.realm}`,
        `    service: ${TOKEN_SERVICE}`,
        `    issuer: ${TOKEN_ISSUER}`,
        `    rootcertbundle: ${token.bundle}`,
      ]
    : ['  htpasswd:', '    realm: test-registry', `    path: ${join(dir, 'htpasswd')}`];
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  tls:',
    `    certificate: ${join(dir, 'server.crt')}`,
    `    key: ${join(dir, 'server.key')}`,
    'auth:',
    ...auth,
    '',
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), config);
  const server = spawnServer(['docker-registry', 'serve', join(dir, 'config.yml')]);
  t.after(() => server.stop());
  await waitForPort(port, server.exited);
  return {
    registry: `127.0.0.1:${port}`,
    port,
    username,
    password,
    caFile,
    certDir,
    log: server.output,
    stop: server.stop,
    tokenRequests: () => token?.requests() ?? 0,
  };
}

/** A CA, and a server certificate it signed for 127.0.0.1 and localhost. */
async function makeCertificates(dir: string, caFile: string): Promise<void> {
  const at = (name: string): string => join(dir, name);
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=test CA'].concat([
      '-keyout',
      at('ca.key'),
      '-out',
      caFile,
    ]),
  );
  await run(
    'openssl',
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1'].concat([
      '-keyout',
      at('server.key'),
      '-out',
      at('server.csr'),
    ]),
  );
  await writeFile(at('san.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
  await run(
    'openssl',
    ['x509', '-req', '-in', at('server.csr'), '-CA', caFile, '-CAkey', at('ca.key')].concat([
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      at('san.ext'),
      '-out',
      at('server.crt'),
    ]),
  );
}

/** Blob uploads the registry's access log shows: each POST, PATCH and PUT under /blobs/uploads/. */
export function blobUploadLines(log: string): string[] {
  return log.split('\n').filter((line) => /"(?:POST|PATCH|PUT) \/v2\/[^ ]*\/blobs\/uploads\//.test(line));
}

export interface CuttingProxy {
  port: number;
  /** Connections cut so far. */
  cuts(): number;
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 to `port` that cuts a connection (both ends) once
 * the client has sent `afterBytes` through it: `times` connections are cut,
 * then it forwards faithfully. With `between`, it cuts instead the first
 * connection opened after `afterBytes` went through all connections, before
 * it forwards a byte of it: a request that never reached the registry.
 */
export async function startCuttingProxy(
  t: Teardown,
  port: number,
  options: { afterBytes: number; times: number; between?: true },
): Promise<CuttingProxy> {
  let cuts = 0;
  let total = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    sockets.add(client).add(upstream);
    let sent = 0;
    const cut = cuts < options.times;
    const cutAtOnce = options.between === true && total > options.afterBytes;
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      total += chunk.length;
      const due = options.between ? cutAtOnce : sent > options.afterBytes;
      if (cut && due && cuts < options.times) {
        cuts += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  t.after(close);
  return { port: typeof address === 'object' && address ? address.port : 0, cuts: () => cuts, close };
}

const TOKEN_SERVICE = 'test-registry';
const TOKEN_ISSUER = 'test-token-issuer';

/**
 * The registry's token service (distribution's `auth: token`): https on
 * 127.0.0.1 with the registry's certificate; for the right Basic credentials
 * it answers `{"token": JWT}`, an RS256 token signed by a key whose
 * certificate (in the JWT's x5c) is the registry's rootcertbundle, granting
 * the scope asked for.
 */
async function startTokenService(
  t: Teardown,
  dir: string,
  credentials: { username: string; password: string },
): Promise<{ realm: string; bundle: string; requests: () => number }> {
  const bundle = join(dir, 'token-signer.crt');
  const signerKey = join(dir, 'token-signer.key');
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=token signer'].concat([
      '-keyout',
      signerKey,
      '-out',
      bundle,
    ]),
  );
  const signer = createPrivateKey(await readFile(signerKey));
  const der = new X509Certificate(await readFile(bundle)).raw.toString('base64');
  const expected = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  let requests = 0;
  const server = createHttpsServer(
    { key: await readFile(join(dir, 'server.key')), cert: await readFile(join(dir, 'server.crt')) },
    (request, response) => {
      requests += 1;
      const url = new URL(request.url ?? '/', 'https://127.0.0.1');
      if (request.headers.authorization !== expected) {
        response.writeHead(401).end();
        return;
      }
      const access = url.searchParams.getAll('scope').flatMap((scope) => {
        const [type, name, actions] = scope.split(':');
        return type && name && actions ? [{ type, name, actions: actions.split(',') }] : [];
      });
      const now = Math.floor(Date.now() / 1000);
      const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
      const header = part({ typ: 'JWT', alg: 'RS256', x5c: [der] });
      const claims = part({
        iss: TOKEN_ISSUER,
        sub: credentials.username,
        aud: url.searchParams.get('service'),
        exp: now + 600,
        nbf: now - 60,
        iat: now,
        jti: randomUUID(),
        access,
      });
      const signature = sign('sha256', Buffer.from(`${header}.${claims}`), signer).toString('base64url');
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify({ token: `${header}.${claims}.${signature}`, expires_in: 600 }));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { realm: `https://127.0.0.1:${port}/token`, bundle, requests: () => requests };
}
