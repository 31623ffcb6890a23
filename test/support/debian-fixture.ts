import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { REPO_ROOT, writeImageConfig } from './fixture.js';

/** Where the real-Debian fixture is built (git-ignored, like the small fixture's cache). */
export const DEBIAN_FIXTURE_DIR = join(REPO_ROOT, 'test', '.cache', 'debian-fixture');

let built = false;

/**
 * Build (or reuse) the real-Debian fixture: its installer kernel and initrd,
 * and the root file system tarball debootstrap made on the host. The first
 * build takes about two minutes (downloads from Debian's archive); later ones
 * reuse test/.cache/debian-fixture until its scripts change.
 */
export function ensureDebianFixture(): string {
  if (!built) {
    execFileSync('bash', [join(REPO_ROOT, 'test', 'fixture-debian', 'build-fixture-debian.sh'), DEBIAN_FIXTURE_DIR], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    built = true;
  }
  return DEBIAN_FIXTURE_DIR;
}

/**
 * A package of Debian 12's archive as a .deb, for the installer's `deb=URL` directive: downloaded once
 * with the host's apt (`apt-get download`, from the Debian archive this host's sources name) into
 * test/.cache/debian-fixture/debs/ and reused.
 */
export function ensureDebianPackage(name: string): string {
  const dir = join(ensureDebianFixture(), 'debs');
  mkdirSync(dir, { recursive: true });
  const have = (): string | undefined =>
    readdirSync(dir).find((file) => file.startsWith(`${name}_`) && file.endsWith('.deb'));
  if (!have()) execFileSync('apt-get', ['download', '-q', name], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const file = have();
  if (!file) throw new Error(`apt-get download ${name} left no ${name}_*.deb in ${dir}`);
  return join(dir, file);
}

/** The root file system tarball the fixture installer unpacks. */
export const ROOTFS_FILE = 'rootfs.tar';

export interface RootfsServer {
  /** The tarball's URL as the guest sees it (the host's loopback is 10.0.2.2 under user networking). */
  url: string;
  /** The URL of each extra file, by its name, as the guest sees it. */
  urls: Record<string, string>;
  port: number;
  /** Paths requested so far. */
  requests: string[];
  stop(): Promise<void>;
}

/** Something with `after(fn)`: a node:test TestContext or SuiteContext. */
export interface Teardown {
  after(fn: () => unknown): void;
}

/**
 * A short-lived HTTP server on 127.0.0.1 that serves the fixture's
 * rootfs.tar to the installer, and the `extra` files by their names (404 for
 * anything else). Stops when the test ends when `t` is given.
 */
export async function serveRootfs(t?: Teardown, file = ROOTFS_FILE, extra: string[] = []): Promise<RootfsServer> {
  const served = new Map([file, ...extra].map((path) => [`/${basename(path)}`, resolve(ensureDebianFixture(), path)]));
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const path = served.get(req.url ?? '');
    if (req.method !== 'GET' || !path) {
      res.statusCode = 404;
      res.end('not here\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(statSync(path).size) });
    createReadStream(path).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t?.after(stop);
  const urls = Object.fromEntries(extra.map((path) => [basename(path), `http://10.0.2.2:${port}/${basename(path)}`]));
  return { url: `http://10.0.2.2:${port}/${file}`, urls, port, requests, stop };
}

export interface DebianImageOptions {
  /** The tarball's URL (serveRootfs().url); needed unless method=debootstrap. */
  rootfsUrl?: string;
  /** More `# fixture: KEY=VALUE` directives (method, mirror, hostname, fail). */
  directives?: Record<string, string | number>;
  /** Extra keys for the image's section. */
  keys?: Record<string, string>;
  /** Extra INI text appended (other sections). */
  extra?: string;
  name?: string;
}

/** Write an answer file and a configuration with one image that installs real Debian with the fixture. */
export function writeDebianFixtureConfig(
  workDir: string,
  options: DebianImageOptions = {},
): { config: string; image: string; answer: string } {
  const fixture = ensureDebianFixture();
  const name = options.name ?? 'debian-fixture';
  const answer = join(workDir, `${name}-answer.cfg`);
  const directives = { ...(options.rootfsUrl ? { rootfs: options.rootfsUrl } : {}), ...options.directives };
  const lines = Object.entries(directives).map(([key, value]) => `# fixture: ${key}=${value}\n`);
  writeFileSync(
    answer,
    `# answer file for the real-Debian fixture installer\n${lines.join('')}d-i debian-installer/locale string en_US\n`,
  );
  const keys: Record<string, string> = {
    linux: `${fixture}/vmlinuz`,
    initrd: `file://${fixture}/initrd.gz`,
    preseed: answer,
    append: 'console=ttyS0',
    ram: '1G',
    'image-size': '2G',
    accelerator: 'tcg',
    osinfo: 'debian11',
    format: 'qcow2',
    cache_dir: join(workDir, 'cache'),
    'install-timeout': '10m',
    ...options.keys,
  };
  return { config: writeImageConfig(workDir, name, keys, options.extra), image: name, answer };
}
