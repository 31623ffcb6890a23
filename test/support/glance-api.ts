import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, serveOnPort, type Teardown } from './rsync-daemon.js';

/** An image as the service's own API shows it. */
export type ServiceImage = Record<string, unknown> & { id: string; name: string; status: string };

export interface GlanceApi {
  /** `http://127.0.0.1:PORT`: the upload_target of a glance destination. */
  endpoint: string;
  /** The images the service holds, from its own API (GET /v2/images). */
  images(): Promise<ServiceImage[]>;
  /** The folder of the file store: one file an active image, named by its ID. */
  store: string;
  stop(): Promise<void>;
}

/**
 * Debian's `glance-api` (OpenStack's image service) on 127.0.0.1, with its
 * own configuration in a temporary folder, the way it runs without the
 * rest of OpenStack:
 *
 * ```ini
 * [DEFAULT]
 * bind_host = 127.0.0.1
 * bind_port = PORT
 * workers = 0                      # one process (eventlet), not one a core
 * enabled_backends = fs:file
 * [database]
 * connection = sqlite:////DIR/glance.sqlite
 * [paste_deploy]
 * flavor =                         # the pipeline without keystone: no auth_strategy, anyone is admin
 * config_file = DIR/glance-api-paste.ini   # a copy of /etc/glance/glance-api-paste.ini
 * [glance_store]
 * default_backend = fs
 * [fs]
 * filesystem_store_datadir = DIR/images
 * [os_glance_staging_store] / [os_glance_tasks_store]
 * filesystem_store_datadir = DIR/staging, DIR/tasks
 * ```
 *
 * `glance-manage --config-file DIR/glance-api.conf db_sync` makes the
 * database first (about 5 s here). Glance 25 (Debian 12's) answers the v2 API
 * with checksum (MD5) and os_hash_value (SHA-512) of each stored image.
 */
export async function startGlanceApi(t: Teardown | undefined): Promise<GlanceApi> {
  const dir = await mkdtemp(join(tmpdir(), 'glance-api-'));
  const store = join(dir, 'images');
  for (const folder of [store, join(dir, 'staging'), join(dir, 'tasks')]) await mkdir(folder);
  await copyFile('/etc/glance/glance-api-paste.ini', join(dir, 'glance-api-paste.ini'));
  const port = await freePort();
  const config = join(dir, 'glance-api.conf');
  await writeFile(
    config,
    [
      '[DEFAULT]',
      'bind_host = 127.0.0.1',
      `bind_port = ${port}`,
      'workers = 0',
      `log_file = ${join(dir, 'glance-api.log')}`,
      'enabled_backends = fs:file',
      '[database]',
      `connection = sqlite:///${join(dir, 'glance.sqlite')}`,
      '[paste_deploy]',
      'flavor =',
      `config_file = ${join(dir, 'glance-api-paste.ini')}`,
      '[glance_store]',
      'default_backend = fs',
      '[fs]',
      `filesystem_store_datadir = ${store}`,
      '[os_glance_staging_store]',
      `filesystem_store_datadir = ${join(dir, 'staging')}`,
      '[os_glance_tasks_store]',
      `filesystem_store_datadir = ${join(dir, 'tasks')}`,
      '',
    ].join('\n'),
  );
  await promisify(execFile)('glance-manage', ['--config-file', config, 'db_sync']);
  const stop = await serveOnPort(['glance-api', '--config-file', config], port, dir, t);
  const endpoint = `http://127.0.0.1:${port}`;
  const images = async (): Promise<ServiceImage[]> => {
    const response = await fetch(`${endpoint}/v2/images?visibility=all&limit=1000`);
    if (!response.ok) throw new Error(`GET /v2/images: HTTP ${response.status}`);
    return ((await response.json()) as { images: ServiceImage[] }).images;
  };
  return { endpoint, images, store, stop };
}
