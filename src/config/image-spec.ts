import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { redactUri } from '../net/credentials.js';
import { ConfigError, ConfigParser, parseBoolean } from './configparser.js';
import { DURATION_FORMS, SIZE_FORMS, parseBytes, parseDuration } from './units.js';
import { UsageError } from './usage-error.js';

export type ImageFormat = 'raw' | 'qcow2';
export type Accelerator = 'auto' | 'kvm' | 'tcg';
export type ZeroFreeSpace = 'discard' | 'zerofree' | 'none';
export type Compression = 'none' | 'zlib' | 'zstd';
export type AnswerKind = 'preseed' | 'kickstart' | 'yast' | 'autoinstall';
export type AnswerDelivery = 'inject' | 'http';

/** Where an installer file comes from. */
export interface InstallerSource {
  /** The URI as configured (secrets included: never log it, log `display`). */
  uri: string;
  /** The URI with any password replaced, for logs. */
  display: string;
  scheme: 'file' | 'http' | 'https' | 'rsync';
  /** Local path for `file`, the URL otherwise. */
  location: string;
  /** Expected SHA-256 (lower-case hex), when configured. */
  sha256?: string;
}

export interface UploadDestination {
  /** Section name. */
  name: string;
  type: 'rsync';
  target: string;
  args: string[];
  /** The post-upload commands for an uploaded file, each split into words as the original does. */
  postUploadCommands: (imageFile: string) => string[][];
}

/** Everything a build needs, typed and validated. */
export interface ImageSpec {
  name: string;
  /** YYYY-MM-DD of the build (local time, as the original). */
  date: string;
  /** `<name>-<date>`: the stem of every file the build writes. */
  stem: string;
  outputDir: string;
  /** `<cache_dir>/<name>`: where installer files are cached. */
  cacheDir: string;
  format: ImageFormat;
  imageSize: number;
  ramMiB: number;
  cores: number;
  installer: { kind: 'netboot'; linux: InstallerSource; initrd: InstallerSource } | { kind: 'image'; image: InstallerSource };
  answerFile?: { kind: AnswerKind; path: string };
  answerDelivery: AnswerDelivery;
  append: string;
  mac?: string;
  vnc?: { listen: string; port: number };
  osinfo: string;
  /** virt-install's --cpu value, when set (e.g. mode=maximum for x86-64-v3 distributions under TCG). */
  cpu?: string;
  accelerator: Accelerator;
  installTimeoutMs: number;
  installerLogs: boolean;
  keepRaw: boolean;
  logFile?: string;
  zeroFreeSpace: ZeroFreeSpace;
  compress: Compression;
  upload: boolean;
  uploads: UploadDestination[];
  postBuildCommand?: string;
  bootTest: BootTestSpec;
}

/** Boot the finished image in a throw-away VM before anything is uploaded. */
export interface BootTestSpec {
  enabled: boolean;
  timeoutMs: number;
  /** Regular expression (source) that the console must show: the system came up. */
  expect: string;
  /** Attach a NoCloud seed and require cloud-init to report that it finished. */
  cloudInit: boolean;
  ramMiB: number;
}

/** Options given on the command line or as action inputs. They win over the files. */
export interface Overrides {
  'cache_dir'?: string;
  format?: string;
  'image-size'?: string;
  mac?: string;
  'installer-logs'?: boolean;
  'log-file'?: boolean;
  'log-filename'?: string;
  accelerator?: string;
  'install-timeout'?: string;
  'zero-free-space'?: string;
  compress?: string;
  'boot-test'?: boolean;
}

export const DEFAULT_IMAGE_SIZE = '2G';
export const DEFAULT_RAM = '1G';
export const DEFAULT_INSTALL_TIMEOUT = '3h';
export const DEFAULT_OSINFO = 'linux2022';
export const DEFAULT_BOOT_TIMEOUT = '10m';
/** getty's prompt, e.g. `debian login:`. */
export const DEFAULT_BOOT_EXPECT = '\\blogin: *$';

/** The build date as the original writes it in file names: YYYY-MM-DD, local time. */
export function localDate(date = new Date()): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function defaultCacheDir(uid = process.getuid?.() ?? 0): string {
  return uid === 0 ? '/var/cache/image-factory' : '~/.cache/image-factory';
}

/**
 * Apply overrides the way the original does: written into the image's
 * section (booleans as Python's str(bool)), and cache_dir set when unset.
 * Returns false when the image has no section.
 */
export function applyOverrides(config: ConfigParser, image: string, overrides: Overrides): boolean {
  const existed = config.hasSection(image);
  if (!existed) config.addSection(image);
  for (const [key, value] of Object.entries(overrides) as Array<[string, string | boolean | undefined]>) {
    if (value === undefined) continue;
    config.set(image, key, typeof value === 'boolean' ? (value ? 'True' : 'False') : value);
  }
  if (!config.hasOption(image, 'cache_dir')) config.set(image, 'cache_dir', defaultCacheDir());
  try {
    config.set(image, 'cache_dir', expandHome(config.get(image, 'cache_dir')));
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  return existed;
}

/** The resolved options of an image: configparser's items(section). */
export function resolvedOptions(config: ConfigParser, image: string): Record<string, string> {
  try {
    return config.items(image);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

export interface ResolveContext {
  outputDir: string;
  date: string;
  /** Images that exist, to list when the asked one does not. */
  knownImages: string[];
  /** Whether the image had a section before overrides were applied. */
  hadSection: boolean;
  upload: boolean;
}

/** Turn an image's section into a validated ImageSpec, or throw UsageError saying what is wrong. */
export function resolveImageSpec(config: ConfigParser, image: string, context: ResolveContext): ImageSpec {
  if (!context.hadSection) {
    const known = context.knownImages.length ? context.knownImages.join(', ') : '(none)';
    throw new UsageError(`No section '${image}' defined in the configuration. Images that exist: ${known}.`);
  }
  const options = resolvedOptions(config, image);
  const where = (key: string): string => {
    const origin = config.origin(image, key);
    return origin ? `${origin.file}:${origin.line}: ` : '';
  };
  const problem = (key: string, message: string): UsageError =>
    new UsageError(`${where(key)}[${image}] ${key}: ${message}`);

  const sizeOf = (key: string, fallback: string): number => {
    const text = options[key] ?? fallback;
    const bytes = parseBytes(text);
    if (bytes === undefined || bytes === 0) throw problem(key, `'${text}' is not a size; use ${SIZE_FORMS}.`);
    return bytes;
  };
  const booleanOf = (key: string, fallback: boolean): boolean => {
    const text = options[key];
    if (text === undefined) return fallback;
    const value = parseBoolean(text);
    if (value === undefined) throw problem(key, `'${text}' is not a boolean; use 1/yes/true/on or 0/no/false/off.`);
    return value;
  };
  const choiceOf = <T extends string>(key: string, choices: readonly T[], fallback: T): T => {
    const text = (options[key] ?? fallback).trim();
    if (!(choices as readonly string[]).includes(text)) {
      throw problem(key, `'${text}' is not one of ${choices.join(', ')}.`);
    }
    return text as T;
  };

  const format = choiceOf<ImageFormat>('format', ['raw', 'qcow2'], 'raw');
  const imageSize = sizeOf('image-size', DEFAULT_IMAGE_SIZE);
  const ramMiB = Math.floor(sizeOf('ram', DEFAULT_RAM) / 1024 / 1024);
  if (ramMiB < 128) throw problem('ram', `${options.ram} is less than the 128 MiB an installer needs.`);
  const coresText = options.cores ?? '1';
  if (!/^[1-9][0-9]*$/.test(coresText.trim())) throw problem('cores', `'${coresText}' is not a whole number of CPU cores (1 or more).`);

  const installer = resolveInstaller(options, problem);
  const answerFile = resolveAnswerFile(options, problem);
  const answerDelivery = choiceOf<AnswerDelivery>('answer-delivery', ['inject', 'http'], 'inject');

  let mac: string | undefined;
  if (options.mac !== undefined && options.mac.trim() !== '') {
    mac = options.mac.trim().toLowerCase();
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) {
      throw problem('mac', `'${options.mac}' is not a MAC address; use six hex pairs like 52:54:00:12:34:56.`);
    }
    if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) {
      throw problem('mac', `'${options.mac}' is a multicast address; a network card needs a unicast one (first byte even, e.g. 52:54:00:…).`);
    }
  }

  let vnc: ImageSpec['vnc'];
  if (options.vnc !== undefined && options.vnc.trim() !== '') {
    const match = /^([^:]*):([0-9]+)$/.exec(options.vnc.trim());
    const display = match ? Number(match[2]) : NaN;
    if (!match || display > 65535 - 5900) {
      throw problem('vnc', `'${options.vnc}' is not a VNC display; use LISTEN:DISPLAY such as localhost:1 (port 5901) or :1.`);
    }
    vnc = { listen: match[1], port: 5900 + display };
  }

  const timeoutText = options['install-timeout'] ?? DEFAULT_INSTALL_TIMEOUT;
  const installTimeoutMs = parseDuration(timeoutText);
  if (installTimeoutMs === undefined || installTimeoutMs === 0) {
    throw problem('install-timeout', `'${timeoutText}' is not a duration; use ${DURATION_FORMS}.`);
  }

  const osinfo = (options.osinfo ?? DEFAULT_OSINFO).trim();
  if (!/^[A-Za-z0-9._-]+$/.test(osinfo)) {
    throw problem('osinfo', `'${osinfo}' is not an OS name; use a short id from 'virt-install --osinfo list' such as debian12 or linux2022.`);
  }

  const cpu = options.cpu?.trim() || undefined;
  if (cpu !== undefined && !/^[A-Za-z0-9=,._-]+$/.test(cpu)) {
    throw problem('cpu', `'${cpu}' is not a virt-install --cpu value such as mode=maximum, host-passthrough or host-model.`);
  }

  const logFile = booleanOf('log-file', false)
    ? resolve(context.outputDir, expandHome(options['log-filename'] ?? `${image}-${context.date}.log`))
    : undefined;

  const postBuild = options['post-build-command']?.trim();

  const bootTimeoutText = options['boot-timeout'] ?? DEFAULT_BOOT_TIMEOUT;
  const bootTimeoutMs = parseDuration(bootTimeoutText);
  if (bootTimeoutMs === undefined || bootTimeoutMs === 0) {
    throw problem('boot-timeout', `'${bootTimeoutText}' is not a duration; use ${DURATION_FORMS}.`);
  }
  const expect = options['boot-test-expect'] ?? DEFAULT_BOOT_EXPECT;
  try {
    new RegExp(expect, 'm');
  } catch (error) {
    throw problem('boot-test-expect', `'${expect}' is not a regular expression: ${(error as Error).message}.`);
  }
  return {
    name: image,
    date: context.date,
    stem: `${image}-${context.date}`,
    outputDir: context.outputDir,
    cacheDir: join(resolve(expandHome(options.cache_dir ?? defaultCacheDir())), image),
    format,
    imageSize,
    ramMiB,
    cores: Number(coresText),
    installer,
    answerFile,
    answerDelivery,
    append: options.append ?? '',
    mac,
    vnc,
    osinfo,
    cpu,
    accelerator: choiceOf<Accelerator>('accelerator', ['auto', 'kvm', 'tcg'], 'auto'),
    installTimeoutMs,
    installerLogs: booleanOf('installer-logs', false),
    keepRaw: booleanOf('keep-raw', false),
    logFile,
    zeroFreeSpace: choiceOf<ZeroFreeSpace>('zero-free-space', ['discard', 'zerofree', 'none'], 'discard'),
    compress: choiceOf<Compression>('compress', ['none', 'zlib', 'zstd'], 'none'),
    upload: context.upload,
    uploads: resolveUploads(config, image, options),
    postBuildCommand: postBuild ? postBuild : undefined,
    bootTest: {
      enabled: booleanOf('boot-test', false),
      timeoutMs: bootTimeoutMs,
      expect,
      cloudInit: booleanOf('boot-test-cloud-init', true),
      ramMiB: Math.max(ramMiB, 512),
    },
  };
}

type Problem = (key: string, message: string) => UsageError;

function resolveInstaller(options: Record<string, string>, problem: Problem): ImageSpec['installer'] {
  const source = (key: string): InstallerSource => {
    const uri = options[key].trim();
    const checksumKey = `${key}_sha256`;
    const parsed = parseSource(uri, (message) => problem(key, message));
    const sha = options[checksumKey]?.trim().toLowerCase();
    if (sha !== undefined && sha !== '') {
      if (!/^[0-9a-f]{64}$/.test(sha)) throw problem(checksumKey, `'${sha}' is not a SHA-256 (64 hex digits).`);
      parsed.sha256 = sha;
    }
    return parsed;
  };
  if (options.installer_image !== undefined && options.installer_image.trim() !== '') {
    return { kind: 'image', image: source('installer_image') };
  }
  const missing = ['linux', 'initrd'].filter((key) => options[key] === undefined || options[key].trim() === '');
  if (missing.length) {
    throw problem(
      missing[0],
      `no ${missing.map((k) => `'${k}'`).join(' or ')} set. An image needs 'linux' and 'initrd' (URIs of the netboot kernel and initrd: file:, http:, https:, rsync: or a path) or 'installer_image'.`,
    );
  }
  return { kind: 'netboot', linux: source('linux'), initrd: source('initrd') };
}

/** Parse an installer URI: file:///p, file:/p, a plain path (~ expands, relative to the working folder), http(s):, rsync:. */
export function parseSource(uri: string, fail: (message: string) => UsageError): InstallerSource {
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri);
  const scheme = schemeMatch?.[1].toLowerCase();
  if (scheme === undefined) {
    return { uri, display: uri, scheme: 'file', location: resolve(expandHome(uri)) };
  }
  if (scheme === 'file') {
    let path = uri.slice('file:'.length);
    if (path.startsWith('//')) {
      const host = path.slice(2).split('/')[0];
      if (host !== '' && host !== 'localhost') throw fail(`'${uri}' names host '${host}'; a file: URI must be local (file:///path).`);
      path = path.slice(2 + host.length);
    }
    return { uri, display: uri, scheme: 'file', location: resolve(expandHome(decodeURIComponent(path))) };
  }
  if (scheme === 'http' || scheme === 'https' || scheme === 'rsync') {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw fail(`'${redactUri(uri)}' is not a valid URL.`);
    }
    if (!url.hostname) throw fail(`'${redactUri(uri)}' has no host.`);
    return { uri, display: redactUri(uri), scheme, location: uri };
  }
  throw fail(`unsupported scheme '${scheme}:' in '${redactUri(uri)}'; use file:, http:, https:, rsync: or a plain path.`);
}

const ANSWER_KINDS: readonly AnswerKind[] = ['preseed', 'kickstart', 'yast', 'autoinstall'];

function resolveAnswerFile(options: Record<string, string>, problem: Problem): ImageSpec['answerFile'] {
  const given = ANSWER_KINDS.filter((kind) => options[kind] !== undefined && options[kind].trim() !== '');
  if (given.length > 1) {
    throw problem(given[1], `only one answer file can be used, but ${given.map((k) => `'${k}'`).join(' and ')} are set.`);
  }
  if (given.length === 0) return undefined;
  const kind = given[0];
  const path = resolve(expandHome(options[kind].trim()));
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw problem(kind, `the answer file '${path}' does not exist or is not readable.`);
  }
  return { kind, path };
}

function resolveUploads(config: ConfigParser, image: string, options: Record<string, string>): UploadDestination[] {
  const names = (options.upload_destinations ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const origin = config.origin(image, 'upload_destinations');
  const at = origin ? `${origin.file}:${origin.line}: ` : '';
  return names.map((name) => {
    if (!config.hasSection(name)) {
      throw new UsageError(`${at}[${image}] upload_destinations names '${name}', but there is no section [${name}].`);
    }
    const get = (key: string): string | undefined => {
      if (!config.hasOption(name, key)) return undefined;
      try {
        return config.get(name, key);
      } catch (error) {
        if (error instanceof ConfigError) throw new UsageError(error.message);
        throw error;
      }
    };
    const where = (key: string): string => {
      const o = config.origin(name, key);
      return o ? `${o.file}:${o.line}: ` : '';
    };
    const type = get('upload_type')?.trim();
    if (!type) throw new UsageError(`[${name}] has no 'upload_type' (the only type is rsync).`);
    if (type.toLowerCase() !== 'rsync') {
      throw new UsageError(`${where('upload_type')}[${name}] upload_type: unknown type '${type}'. Supported types: rsync.`);
    }
    const target = get('upload_target')?.trim();
    if (!target) throw new UsageError(`[${name}] has no 'upload_target' (e.g. user@host:/srv/images/ or rsync://host/module/).`);
    const keys: string[] = [];
    if (config.hasOption(name, 'post-upload-command')) keys.push('post-upload-command');
    for (let i = 1; config.hasOption(name, `post-upload-command${i}`); i += 1) keys.push(`post-upload-command${i}`);
    // ${image} names the uploaded file, as in the original: the key is set in the
    // destination's section before the commands are read. Try it now so that a
    // broken command fails before the build rather than after it.
    const postUploadCommands = (imageFile: string): string[][] => {
      config.set(name, 'image', imageFile);
      return keys.map((key) => (get(key) ?? '').split(' ').filter((word) => word.trim() !== ''));
    };
    postUploadCommands('IMAGE');
    return {
      name,
      type: 'rsync',
      target,
      args: (get('upload_args') ?? '').split(' ').filter((arg) => arg.trim() !== ''),
      postUploadCommands,
    };
  });
}

export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}
