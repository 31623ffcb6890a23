import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import type { BuildContext } from '../context/build-context.js';

/** Where a guest under user networking (slirp) reaches the host's loopback. */
export const GUEST_HOST_ADDRESS = '10.0.2.2';

export interface AnswerServer {
  /** The URL of the answer file as the guest sees it. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serve the answer file over HTTP for the duration of the install, for
 * installers that do not read a file injected into the initrd (Ubuntu's
 * subiquity). Bound to 127.0.0.1 on a random port; the guest reaches it at
 * 10.0.2.2. An autoinstall file is served as a NoCloud seed folder
 * (user-data and an empty meta-data). The answer file holds password
 * hashes and the port is open to every local user and every VM on user
 * networking: everything is served under a random 128-bit token that only
 * the installer's kernel command line carries, and every other request is
 * refused (and logged as refused).
 */
export async function serveAnswerFile(ctx: BuildContext): Promise<AnswerServer | undefined> {
  const answer = ctx.spec.answerFile;
  if (!answer || ctx.spec.answerDelivery !== 'http') return undefined;
  const name = answer.kind === 'autoinstall' ? 'user-data' : basename(answer.path).replace(/[^A-Za-z0-9._+-]/g, '_');
  // A dry run starts no server: it would only print a port that the real build does not get.
  if (!ctx.host.live) {
    const url = `http://${GUEST_HOST_ADDRESS}:PORT/TOKEN/${name}`;
    ctx.reporter.info(`would serve ${answer.path} at ${url} during the install`);
    return { url, port: 0, close: async () => undefined };
  }
  const token = randomBytes(16).toString('hex');
  const body = await readFile(answer.path);
  const files = new Map<string, Buffer>([[`/${token}/${name}`, body]]);
  if (answer.kind === 'autoinstall') {
    files.set(`/${token}/meta-data`, Buffer.from(`instance-id: image-factory-${ctx.spec.stem}\n`));
    files.set(`/${token}/vendor-data`, Buffer.alloc(0));
  }
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const content = request.method === 'GET' || request.method === 'HEAD' ? files.get(path) : undefined;
    const shown = path.split(token).join('TOKEN');
    const from = request.socket.remoteAddress ?? 'unknown';
    if (!content) {
      // Not the installer (or not a file it needs): nothing about the token or the files is told.
      const what = `${request.method} ${shown.length > 200 ? `${shown.slice(0, 200)}...` : shown}`;
      ctx.reporter.warning(`answer file server: refused ${JSON.stringify(what)} from ${from} (404)`);
      response.writeHead(404).end();
      return;
    }
    ctx.reporter.info(`answer file server: ${request.method} ${shown} from the installer (${from}) -> 200`);
    response.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': content.length });
    response.end(request.method === 'HEAD' ? undefined : content);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${GUEST_HOST_ADDRESS}:${port}/${token}/${name}`;
  ctx.reporter.info(
    `serving the answer file at http://${GUEST_HOST_ADDRESS}:${port}/TOKEN/${name} (127.0.0.1:${port} on this host, ` +
      'under a random token only the installer is given) during the install',
  );
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
