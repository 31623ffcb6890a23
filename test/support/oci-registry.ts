import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
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
export async function startTestRegistry(t: Teardown): Promise<TestRegistry> {
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
    '  htpasswd:',
    '    realm: test-registry',
    `    path: ${join(dir, 'htpasswd')}`,
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
 * then it forwards faithfully.
 */
export async function startCuttingProxy(
  t: Teardown,
  port: number,
  options: { afterBytes: number; times: number },
): Promise<CuttingProxy> {
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    sockets.add(client).add(upstream);
    let sent = 0;
    const cut = cuts < options.times;
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (cut && sent > options.afterBytes && cuts < options.times) {
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
