import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { redactSecrets, redactUri, secretsInText, secretsOf } from '../common/credentials.js';
import { ConfigParser, DEFAULT_SECTION, parseBoolean } from './configparser.js';
import {
  badValueMessage,
  listItems,
  optionByKey,
  parseVnc,
  valueProblem,
  type ChoiceOf,
  type KeyOfKind,
  type OptionKey,
  type Overrides,
} from './options.js';
import { parseBytes, parseDuration } from '../common/units.js';
import { archKeys, hostArch } from '../common/arch.js';
import { checkKeys, closestFirst } from './unknown-keys.js';
import { UsageError } from './usage-error.js';
import { resolveVerification, type VerificationSpec } from './verification-spec.js';
import { resolveOciDestination, type OciDestination } from './oci-destination.js';
import { checkGlanceEndpoint, resolveGlanceSettings, type GlanceSettings } from './glance-destination.js';
import { resolveSigning, signingSecrets, type SigningSpec } from './signing-spec.js';
import {
  checkAnsible,
  hostFile,
  parseProvisioner,
  parseVariable,
  valueLines,
  type GuestCommand,
  type LineSource,
  type ProvisionSpec,
} from './provisioners.js';

export type ImageFormat = ChoiceOf<'format'>;
export type Accelerator = ChoiceOf<'accelerator'>;
export type Firmware = ChoiceOf<'firmware'>;
export type Arch = ChoiceOf<'arch'>;
export type ZeroFreeSpace = ChoiceOf<'zero-free-space'>;
export type Generalize = ChoiceOf<'generalize'>;
export type Compression = ChoiceOf<'compress'>;
export type AnswerKind = KeyOfKind<'answer-file'>;
export type AnswerDelivery = ChoiceOf<'answer-delivery'>;
export type { Overrides, SigningSpec, VerificationSpec };

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
  type: 'rsync' | 'oci' | 'glance';
  target: string;
  args: string[];
  /** The registry, repository and credentials of an `oci` destination. */
  oci?: OciDestination;
  /** `upload_type = glance`: the image service's settings. */
  glance?: GlanceSettings;
  /**
   * The post-upload commands for an uploaded file, each split into words as the
   * original does; `${reference}` is what the upload made (the pushed reference, the Glance image ID).
   */
  postUploadCommands: (imageFile: string, reference?: string) => string[][];
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
  /** The first of `formats`: the image the boot test boots and the outputs name first. */
  format: ImageFormat;
  /** Every format to write, in the order given, each converted from the one install's raw disk. */
  formats: ImageFormat[];
  imageSize: number;
  ramMiB: number;
  cores: number;
  installer:
    { kind: 'netboot'; linux: InstallerSource; initrd: InstallerSource } | { kind: 'image'; image: InstallerSource };
  /** The signed checksums the installer files are verified against, when configured. */
  verification?: VerificationSpec;
  /** The key that signs SHA256SUMS (`signing-key`), when configured. */
  signing?: SigningSpec;
  answerFile?: { kind: AnswerKind; path: string };
  /** An earlier build's manifest to compare this one with (`previous-manifest`). */
  previousManifest?: InstallerSource;
  /** Earlier builds' metrics to compare and chart this one with (`previous-metrics`). */
  previousMetrics: InstallerSource[];
  /** Publish and upload nothing when the packages and inputs equal the previous manifest's (`skip-unchanged`). */
  skipUnchanged: boolean;
  answerDelivery: AnswerDelivery;
  append: string;
  mac?: string;
  vnc?: { listen: string; port: number };
  osinfo: string;
  /** virt-install's --cpu value, when set (e.g. mode=maximum for x86-64-v3 distributions under TCG). */
  cpu?: string;
  accelerator: Accelerator;
  /** The guest architecture (the host's unless set). */
  arch: Arch;
  /** The VMs' firmware: SeaBIOS, or OVMF (UEFI), with Secure Boot or without. */
  firmware: Firmware;
  installTimeoutMs: number;
  /** Stop an installer whose screen and disk stay unchanged this long (0: never). */
  stallTimeoutMs: number;
  installerLogs: boolean;
  keepRaw: boolean;
  logFile?: string;
  zeroFreeSpace: ZeroFreeSpace;
  /** After the logs are removed: apply the generalisation operations, only report what they would do, or skip them. */
  generalize: Generalize;
  compress: Compression;
  upload: boolean;
  uploads: UploadDestination[];
  postBuildCommand?: string;
  /** What runs in the installed system before the scrub; no provisioners: no provisioning boot. */
  provision?: ProvisionSpec;
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
  /** Commands run over SSH as root in the booted image (`boot-test-command`). */
  commands?: GuestCommand[];
  /** A playbook run against the booted image (`boot-test-playbook`). */
  playbook?: string;
}

export const DEFAULT_IMAGE_SIZE = optionByKey('image-size').default;
export const DEFAULT_RAM = optionByKey('ram').default;
export const DEFAULT_INSTALL_TIMEOUT = optionByKey('install-timeout').default;
export const DEFAULT_OSINFO = optionByKey('osinfo').default;
export const DEFAULT_BOOT_TIMEOUT = optionByKey('boot-timeout').default;
/** getty's prompt, e.g. `debian login:`. */
export const DEFAULT_BOOT_EXPECT = optionByKey('boot-test-expect').default;

/** The build date as the original writes it in file names: YYYY-MM-DD, local time. */
export function localDate(date = new Date()): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function defaultCacheDir(uid = process.getuid?.() ?? 0): string {
  return uid === 0 ? '/var/cache/image-factory' : '~/.cache/image-factory';
}

/** The longest image name in UTF-8 bytes: its files (`.<name>-<date>.partial-XXXXXX`, `….sha256sum`) stay below 255. */
const MAX_IMAGE_NAME = 200;

/** Letters and digits of any script (with their combining marks), '.', '_', '+' and '-'; not '.' or '-' first. */
const IMAGE_NAME = /^[\p{L}\p{N}_+][\p{L}\p{M}\p{N}._+-]*$/u;

/**
 * An image name is a plain file name: it names the image's files and its
 * cache folder, and goes into virt-install's domain name and into
 * post-upload commands. Letters of any script are as plain as ASCII ones
 * (the original took any section name); what could leave the folder, read
 * as an option, expand in a shell or hide in a log (`/`, a leading `.` or
 * `-`, `$`, `{`, spaces, control characters) is refused. A UsageError says
 * what is accepted.
 */
export function checkImageName(image: string): void {
  if (image === DEFAULT_SECTION) {
    throw new UsageError(
      `'${DEFAULT_SECTION}' is not an image: [${DEFAULT_SECTION}] holds the keys that every image shares. Name an image's section.`,
    );
  }
  if (IMAGE_NAME.test(image) && Buffer.byteLength(image) <= MAX_IMAGE_NAME) return;
  const shown = image.length > 60 ? `${image.slice(0, 60)}…` : image;
  throw new UsageError(
    `${JSON.stringify(shown)} is not an image name: an image name is a plain file name of letters and digits ` +
      `(of any script), '.', '_', '+' and '-', not starting with '.' or '-', at most ${MAX_IMAGE_NAME} bytes in UTF-8.`,
  );
}

/** How many known images an unknown one lists: about a screenful. */
const LISTED_IMAGES = 20;

/** No such image: the known ones, closest first, at most a screenful of them. */
export function unknownImage(image: string, knownImages: readonly string[]): UsageError {
  if (knownImages.length === 0)
    return new UsageError(`No section '${image}' defined in the configuration, which defines no image.`);
  const listed = closestFirst(image, knownImages).slice(0, LISTED_IMAGES);
  const more = knownImages.length - listed.length;
  return new UsageError(
    `No section '${image}' defined in the configuration. Images that exist: ${listed.join(', ')}` +
      `${more > 0 ? `, and ${more} more (the ${listed.length} closest to '${image}' are listed)` : ''}.`,
  );
}

/**
 * The keys derived from arch (the host's when unset; archKeys) in the image's
 * section, where the configuration has them and the section itself does not
 * set them: [DEFAULT] holds x86_64's values (for readers that do not set them,
 * Python's configparser), and a configuration without them (the original's)
 * gets nothing it did not have, so --print-config prints what the original would.
 */
function setArchKeys(config: ConfigParser, image: string): void {
  const arch = config.hasOption(image, 'arch') ? config.get(image, 'arch').trim() : hostArch();
  const own = new Set(config.ownKeys(image));
  for (const [key, value] of Object.entries(archKeys(arch))) {
    // Ubuntu's keys name its mirror keys: not for a configuration without them.
    const refs = [...value.matchAll(/\$\{([^}]+)\}/g)].map((match) => match[1]);
    if (!own.has(key) && config.hasOption(image, key) && refs.every((ref) => config.hasOption(image, ref)))
      config.set(image, key, value);
  }
}

/**
 * Apply overrides the way the original does: written into the image's
 * section (booleans as Python's str(bool)), and cache_dir set when unset.
 * Returns false when the image has no section.
 */
export function applyOverrides(config: ConfigParser, image: string, overrides: Overrides): boolean {
  checkImageName(image);
  const existed = config.hasSection(image);
  if (!existed) config.addSection(image);
  for (const [key, value] of Object.entries(overrides) as Array<[string, string | boolean | undefined]>) {
    if (value === undefined) continue;
    config.set(image, key, typeof value === 'boolean' ? (value ? 'True' : 'False') : value);
  }
  if (!config.hasOption(image, 'cache_dir')) config.set(image, 'cache_dir', defaultCacheDir());
  setArchKeys(config, image);
  config.set(image, 'cache_dir', expandHome(config.get(image, 'cache_dir')));
  return existed;
}

/**
 * The resolved options for --print-config: items(section), with every form of
 * every password of a URI in them (or in an upload destination's target)
 * replaced by *** — in every value, so a password kept in a key of its own
 * and referenced from a URI is hidden too — unless `showSecrets`.
 */
export function printableOptions(config: ConfigParser, image: string, showSecrets = false): Record<string, string> {
  const options = resolvedOptions(config, image);
  if (showSecrets) return options;
  const targets = (options.upload_destinations ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => config.hasSection(name) && config.hasOption(name, 'upload_target'))
    .map((name) => resolvedOptions(config, name).upload_target);
  const secrets = secretsInText([...Object.values(options), ...targets].join('\n'));
  return Object.fromEntries(Object.entries(options).map(([key, value]) => [key, redactSecrets(value, secrets)]));
}

/** The resolved options of an image: configparser's items(section). */
export function resolvedOptions(config: ConfigParser, image: string): Record<string, string> {
  return config.items(image);
}

export interface ResolveContext {
  outputDir: string;
  date: string;
  /** Images that exist, to list when the asked one does not. */
  knownImages: string[];
  /** Whether the image had a section before overrides were applied. */
  hadSection: boolean;
  upload: boolean;
  /** Where warnings go (unknown keys); they are dropped when not given. */
  warn?: (message: string) => void;
}

/**
 * The keys of one image's section, read through the option table: each
 * getter takes the table's default when the key is unset, checks the value
 * as the table's kind says, and throws the table's wording of a bad value.
 */
class SectionReader {
  constructor(
    readonly config: ConfigParser,
    readonly image: string,
    readonly options: Record<string, string>,
  ) {}

  /** `file:line: ` of the key, when it comes from a file. */
  at(key: string): string {
    const origin = this.config.origin(this.image, key);
    return origin ? `${origin.file}:${origin.line}: ` : '';
  }

  problem(key: string, message: string): UsageError {
    return new UsageError(`${this.at(key)}[${this.image}] ${key}: ${message}`);
  }

  /** The value as set or the table's default, checked; undefined when neither gives one. */
  text(key: OptionKey): string | undefined {
    const entry = optionByKey(key);
    const text = this.options[key] ?? ('default' in entry ? entry.default : undefined);
    if (text === undefined) return undefined;
    const problem = valueProblem(entry, text);
    if (problem !== undefined)
      throw new UsageError(badValueMessage(entry, { image: this.image, at: this.at(key) }, problem));
    return entry.kind === 'regex' ? text : text.trim();
  }

  /** A string that may be unset or empty. */
  optional(key: OptionKey): string | undefined {
    return this.text(key) || undefined;
  }

  choice<K extends KeyOfKind<'choice'>>(key: K): ChoiceOf<K> {
    return this.text(key) as ChoiceOf<K>;
  }

  choices<K extends KeyOfKind<'choices'>>(key: K): Array<ChoiceOf<K>> {
    return listItems(this.text(key) as string) as Array<ChoiceOf<K>>;
  }

  bytes(key: KeyOfKind<'size'>): number {
    return parseBytes(this.text(key) as string) as number;
  }

  ms(key: KeyOfKind<'duration'>): number {
    return parseDuration(this.text(key) as string) as number;
  }

  flag(key: KeyOfKind<'boolean'>): boolean {
    return parseBoolean(this.text(key) as string) as boolean;
  }
}

/**
 * The architecture (applyOverrides set it when unset) and the firmware:
 * aarch64 machines boot only UEFI, which is their default; bios is refused.
 */
function resolveArchFirmware(read: SectionReader): { arch: Arch; firmware: Firmware } {
  const arch = (read.choice('arch') as Arch | undefined) ?? hostArch();
  const firmware = read.choice('firmware');
  if (arch !== 'aarch64' || firmware !== 'bios') return { arch, firmware };
  if (read.options.firmware === undefined) return { arch, firmware: 'uefi' };
  throw read.problem(
    'firmware',
    'bios is not possible for arch = aarch64: the virt machine boots only UEFI; use uefi or uefi-secure (or leave firmware unset).',
  );
}

/**
 * What the names of an image's files carry of its architecture, the same on
 * every host: nothing for x86_64 (the names of the images before there was a
 * choice), `-aarch64` for aarch64: Debian-12-server-aarch64-2026-12-01.qcow2.
 */
export function archSuffix(arch: Arch): string {
  return arch === 'x86_64' ? '' : `-${arch}`;
}

/** Turn an image's section into a validated ImageSpec, or throw UsageError saying what is wrong. */
export function resolveImageSpec(config: ConfigParser, image: string, context: ResolveContext): ImageSpec {
  if (!context.hadSection) throw unknownImage(image, context.knownImages);
  checkOutputFolder(context.outputDir);
  const options = resolvedOptions(config, image);
  checkKeys(config, image, context.warn ?? (() => undefined));
  const read = new SectionReader(config, image, options);
  const problem: Problem = (key, message) => read.problem(key, message);
  const machine = resolveMachine(read);
  const archFirmware = resolveArchFirmware(read);
  const stem = `${image}${archSuffix(archFirmware.arch)}-${context.date}`;
  const logFile = read.flag('log-file')
    ? resolve(context.outputDir, expandHome(read.optional('log-filename') ?? `${stem}.log`))
    : undefined;
  return {
    name: image,
    date: context.date,
    stem,
    outputDir: context.outputDir,
    // Per architecture: the aarch64 installer is another kernel under the same file names.
    cacheDir: join(
      resolve(expandHome(options.cache_dir ?? defaultCacheDir())),
      `${image}${archSuffix(archFirmware.arch)}`,
    ),
    format: read.choices('format')[0],
    formats: read.choices('format'),
    imageSize: diskSize(read.bytes('image-size'), read.choices('format')),
    ...machine,
    installer: resolveInstaller(options, problem),
    verification: resolveVerification(options, problem, parseSource),
    signing: resolveSigning(options, problem, (key) => `${read.at(key)}[${image}] ${key}`),
    answerFile: resolveAnswerFile(options, problem),
    previousManifest: resolvePreviousManifest(options, problem),
    previousMetrics: resolvePreviousMetrics(options, problem),
    skipUnchanged: read.flag('skip-unchanged'),
    answerDelivery: read.choice('answer-delivery'),
    append: options.append ?? '',
    accelerator: read.choice('accelerator'),
    ...archFirmware,
    installTimeoutMs: read.ms('install-timeout'),
    stallTimeoutMs: read.ms('stall-timeout'),
    installerLogs: read.flag('installer-logs'),
    keepRaw: read.flag('keep-raw'),
    logFile,
    zeroFreeSpace: read.choice('zero-free-space'),
    generalize: read.choice('generalize'),
    compress: read.choice('compress'),
    upload: context.upload,
    uploads: resolveUploads(config, image, options, read.choices('format')),
    postBuildCommand: read.optional('post-build-command'),
    provision: resolveProvision(read),
    bootTest: resolveBootTest(read, machine.ramMiB),
  };
}

/** The lines of a multi-line key that say something, each named by file:line. */
function lineSources(read: SectionReader, key: OptionKey): LineSource[] {
  const value = read.options[key];
  if (value === undefined) return [];
  return valueLines(value, read.config.origin(read.image, key), `[${read.image}] ${key}`);
}

/** provision, provision-env and provision-timeout, every line checked. */
function resolveProvision(read: SectionReader): ProvisionSpec {
  const provisioners = lineSources(read, 'provision').map((line) => parseProvisioner(line, homedir()));
  for (const line of provisioners.filter((provisioner) => provisioner.kind === 'ansible')) checkAnsible(line);
  return {
    provisioners,
    env: lineSources(read, 'provision-env').map(parseVariable),
    timeoutMs: read.ms('provision-timeout'),
  };
}

/** The boot test; its commands and playbook reach the image over SSH, with the key cloud-init's seed gives it. */
function resolveBootTest(read: SectionReader, ramMiB: number): BootTestSpec {
  const enabled = read.flag('boot-test');
  const cloudInit = read.flag('boot-test-cloud-init');
  const commands = lineSources(read, 'boot-test-command');
  const playbookPath = read.optional('boot-test-playbook');
  const uses = commands.length ? 'boot-test-command' : playbookPath !== undefined ? 'boot-test-playbook' : undefined;
  if (uses !== undefined && !enabled)
    throw read.problem(uses, 'runs during the boot test, which is off; set boot-test = yes (or --boot-test).');
  if (uses !== undefined && !cloudInit)
    throw read.problem(
      uses,
      "reaches the booted image over SSH with a key that cloud-init's NoCloud seed gives it; set boot-test-cloud-init = yes.",
    );
  let playbook: string | undefined;
  if (playbookPath !== undefined) {
    const line = { text: playbookPath, where: `${read.at('boot-test-playbook')}[${read.image}] boot-test-playbook` };
    playbook = hostFile(line, playbookPath, 'playbook', homedir());
    checkAnsible(line);
  }
  return {
    enabled,
    timeoutMs: read.ms('boot-timeout'),
    expect: read.text('boot-test-expect') as string,
    cloudInit,
    ramMiB: Math.max(ramMiB, 512),
    commands,
    playbook,
  };
}

/**
 * The raw disk's size: `image-size`, rounded up to a whole MiB when a VHD is
 * among the formats (Azure takes only VHDs of a whole number of MiB; every
 * format of one build has the same virtual size).
 */
export function diskSize(imageSize: number, formats: readonly ImageFormat[]): number {
  if (!formats.includes('vhd')) return imageSize;
  return Math.ceil(imageSize / VHD_ALIGNMENT) * VHD_ALIGNMENT;
}

/** VHD images for Azure have a virtual size of a whole number of MiB. */
export const VHD_ALIGNMENT = 2 ** 20;

/** A path that exists must be a folder to be the output folder (one that does not exist fails before the build). */
function checkOutputFolder(outputDir: string): void {
  let isFolder = true;
  try {
    isFolder = statSync(outputDir).isDirectory();
  } catch {
    return;
  }
  if (!isFolder) throw new UsageError(`the output folder ${outputDir} is not a folder; name a folder for the image.`);
}

/** The installing machine: memory, cores, network card, display, OS and CPU model. */
function resolveMachine(read: SectionReader): Pick<ImageSpec, 'ramMiB' | 'cores' | 'mac' | 'vnc' | 'osinfo' | 'cpu'> {
  const ramMiB = Math.floor(read.bytes('ram') / 1024 / 1024);
  if (ramMiB < 128) throw read.problem('ram', `${read.options.ram} is less than the 128 MiB an installer needs.`);
  const vnc = read.optional('vnc');
  return {
    ramMiB,
    cores: Number(read.text('cores')),
    mac: read.optional('mac')?.toLowerCase(),
    vnc: vnc === undefined ? undefined : parseVnc(vnc),
    osinfo: read.text('osinfo') as string,
    cpu: read.optional('cpu'),
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
      if (host !== '' && host !== 'localhost')
        throw fail(`'${uri}' names host '${host}'; a file: URI must be local (file:///path).`);
      path = path.slice(2 + host.length);
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      throw fail(
        `'${uri}' has a bad percent-escape; in a file: URI write % as %25, and escapes as % and two hex digits of UTF-8.`,
      );
    }
    return { uri, display: uri, scheme: 'file', location: resolve(expandHome(decoded)) };
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
  throw fail(
    `unsupported scheme '${scheme}:' in '${redactUri(uri)}'; use file:, http:, https:, rsync: or a plain path.`,
  );
}

const ANSWER_KINDS: readonly AnswerKind[] = ['preseed', 'kickstart', 'yast', 'autoinstall'];

function resolveAnswerFile(options: Record<string, string>, problem: Problem): ImageSpec['answerFile'] {
  const given = ANSWER_KINDS.filter((kind) => options[kind] !== undefined && options[kind].trim() !== '');
  if (given.length > 1) {
    throw problem(
      given[1],
      `only one answer file can be used, but ${given.map((k) => `'${k}'`).join(' and ')} are set.`,
    );
  }
  if (given.length === 0) return undefined;
  const kind = given[0];
  const path = resolve(expandHome(options[kind].trim()));
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw problem(kind, `the answer file '${path}' does not exist or is not readable.`);
  }
  if (!statSync(path).isFile()) throw problem(kind, `the answer file '${path}' is not a regular file.`);
  return { kind, path };
}

/** `previous-manifest`: a path that must be a readable file now, or an http(s) URL (fetched before the build). */
function resolvePreviousManifest(options: Record<string, string>, problem: Problem): InstallerSource | undefined {
  const value = options['previous-manifest']?.trim();
  if (value === undefined || value === '') return undefined;
  return readableSource('previous-manifest', 'manifest', value, problem);
}

/** `previous-metrics`: paths or http(s) URLs, comma-separated or one a line, each as previous-manifest's. */
function resolvePreviousMetrics(options: Record<string, string>, problem: Problem): InstallerSource[] {
  const items = (options['previous-metrics'] ?? '').split(/[,\n]/).map((item) => item.trim());
  return items
    .filter((item) => item !== '')
    .map((item) => readableSource('previous-metrics', 'metrics', item, problem));
}

/** A path that must be a readable file now, or an http(s) URL. */
function readableSource(key: OptionKey, what: string, value: string, problem: Problem): InstallerSource {
  const source = parseSource(value, (message) => problem(key, message));
  if (source.scheme === 'rsync') {
    throw problem(key, `'${source.display}' is an rsync: URL; give a path or an http(s) URL.`);
  }
  if (source.scheme !== 'file') return source;
  try {
    accessSync(source.location, constants.R_OK);
  } catch {
    throw problem(key, `the ${what} '${source.location}' does not exist or is not readable.`);
  }
  if (!statSync(source.location).isFile()) {
    throw problem(key, `the ${what} '${source.location}' is not a regular file.`);
  }
  return source;
}

/**
 * rsync options that write into the file under its final name while it
 * transfers, so a consumer could see half an image: refused in upload_args
 * before the build starts. (`--partial` and `-P` are harmless: the upload's
 * `--partial-dir` wins. `--temp-dir` on another file system is harmless too:
 * with a partial dir, rsync copies into it and renames.)
 */
export const UNSAFE_UPLOAD_ARGS = ['--inplace', '--append', '--append-verify', '--write-devices'];

function resolveUploads(
  config: ConfigParser,
  image: string,
  options: Record<string, string>,
  formats: readonly string[],
): UploadDestination[] {
  const names = (options.upload_destinations ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const origin = config.origin(image, 'upload_destinations');
  const at = `${origin ? `${origin.file}:${origin.line}: ` : ''}[${image}] upload_destinations`;
  const twice = names.find((name, index) => names.indexOf(name) !== index);
  if (twice !== undefined) throw new UsageError(`${at} names '${twice}' twice; name each destination once.`);
  return names.map((name) => {
    if (!config.hasSection(name)) throw new UsageError(`${at} names '${name}', but there is no section [${name}].`);
    return resolveDestination(config, name, formats);
  });
}

/** One upload destination's section, checked: type, target, arguments and post-upload commands. */
// Long: one section's keys in the order they are checked, each with its message.
function resolveDestination(config: ConfigParser, name: string, formats: readonly string[]): UploadDestination {
  const get = (key: string): string | undefined => {
    if (!config.hasOption(name, key)) return undefined;
    return config.get(name, key);
  };
  const where = (key: string): string => {
    const o = config.origin(name, key);
    return `${o ? `${o.file}:${o.line}: ` : ''}[${name}] ${key}`;
  };
  const type = get('upload_type')?.trim().toLowerCase();
  if (!type) throw new UsageError(`[${name}] has no 'upload_type' (rsync, oci or glance).`);
  if (type !== 'rsync' && type !== 'oci' && type !== 'glance') {
    throw new UsageError(
      `${where('upload_type')}: unknown type '${get('upload_type')?.trim()}'. Supported types: rsync, oci, glance.`,
    );
  }
  const glance = type === 'glance' ? resolveGlanceSettings({ get, where }) : undefined;
  const target =
    type === 'glance'
      ? checkGlanceEndpoint(name, get('upload_target')?.trim(), where('upload_target'))
      : get('upload_target')?.trim();
  if (!target)
    throw new UsageError(
      `[${name}] has no 'upload_target' (e.g. user@host:/srv/images/ or rsync://host/module/; ` +
        'for oci REGISTRY/REPOSITORY[:TAG]).',
    );
  const oci = type === 'oci' ? resolveOciDestination(target, get, where, formats) : undefined;
  const args = (get('upload_args') ?? '').split(' ').filter((arg) => arg.trim() !== '');
  const unsafe = args.filter((arg) => UNSAFE_UPLOAD_ARGS.includes(arg.split('=')[0]));
  if (unsafe.length) {
    throw new UsageError(
      `${where('upload_args')}: ${unsafe.join(' ')} would let rsync write into the file under its final name while it ` +
        `transfers, so a consumer could see half an image; remove ${unsafe.length === 1 ? 'it' : 'them'}.`,
    );
  }
  const keys: string[] = [];
  if (config.hasOption(name, 'post-upload-command')) keys.push('post-upload-command');
  for (let i = 1; config.hasOption(name, `post-upload-command${i}`); i += 1) keys.push(`post-upload-command${i}`);
  // ${image} names the uploaded file, as in the original: the key is set in the
  // destination's section before the commands are read (its `$` escaped, so the
  // name is text, never a reference). Try it now so that a broken command fails
  // before the build rather than after it.
  const postUploadCommands = (imageFile: string, reference = ''): string[][] => {
    config.set(name, 'image', imageFile.replaceAll('$', '$$$$'));
    config.set(name, 'reference', reference.replaceAll('$', '$$$$'));
    return keys.map((key) => (get(key) ?? '').split(' ').filter((word) => word.trim() !== ''));
  };
  postUploadCommands('IMAGE', 'REFERENCE');
  return { name, type, target, args, ...(oci ? { oci } : {}), ...(glance ? { glance } : {}), postUploadCommands };
}

export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}

/** Every form of every password in the spec's URIs (installer files, upload targets): what no output may show. */
export function specSecrets(spec: ImageSpec): string[] {
  const installer =
    spec.installer.kind === 'image'
      ? [spec.installer.image.uri]
      : [spec.installer.linux.uri, spec.installer.initrd.uri];
  const verification = spec.verification;
  const chain = verification ? [verification.checksums, verification.signature, verification.release] : [];
  const chainUris = chain.filter((source) => source !== undefined).map((source) => source.uri);
  const passwords = spec.uploads.flatMap((destination) => destination.oci?.password ?? []);
  const uris = secretsOf([...installer, ...chainUris, ...spec.uploads.map((destination) => destination.target)]);
  const variables = (spec.provision?.env ?? []).filter((variable) => variable.secret && variable.value !== '');
  return [
    ...new Set([
      ...passwords.filter((password) => password !== ''),
      ...uris,
      ...signingSecrets(spec.signing),
      ...variables.map((variable) => variable.value),
    ]),
  ].sort((a, b) => b.length - a.length);
}
