/**
 * Every option of an image, declared once: its INI key, its command-line
 * flag, its action input, its kind, its default and its help. The
 * configuration's validation (image-spec.ts), the command's options and
 * --help (cli/main.ts), the action's inputs (action/inputs.ts), the table in
 * docs/options.md and the wording of a bad value all come from here.
 */
import { parseBoolean } from './configparser.js';
import { availableParallelism } from 'node:os';
import { durationProblem, parseBytes, parseDuration, sizeProblem } from '../common/units.js';

/**
 * What an option's value is. The scalar kinds (choice, size, duration,
 * boolean, count, string, path, regex) and choices (a comma-separated list of
 * choices, each once) are checked here for every door; the
 * others are documented here and checked where they are used (uri, checksum,
 * answer-file and list in image-spec.ts, file and text in action/inputs.ts,
 * lines — one item a line — in provisioners.ts).
 */
export type OptionKind =
  | 'choice'
  | 'choices'
  | 'size'
  | 'duration'
  | 'boolean'
  | 'count'
  | 'string'
  | 'path'
  | 'regex'
  | 'uri'
  | 'checksum'
  | 'answer-file'
  | 'list'
  | 'file'
  | 'text'
  | 'lines';

export interface CliFlag {
  /** The long flag without its dashes: `format` for --format. */
  long: string;
  /** The short flag without its dash: `f` for -f. */
  short?: string;
  /** The value's placeholder in --help, for options that take one. */
  arg?: string;
  /** Booleans: the help of --no-<long>, when the command has it. */
  noHelp?: string;
  /** Booleans: the command has only --no-<long>; the option is on unless it is given. */
  onlyNo?: true;
  /** Lines: the flag may be given again; each adds a line to the value. */
  repeatable?: true;
}

/** One option. */
export interface OptionSpec {
  /** The key in an image's section of the configuration; none for options of the command or action only. */
  key?: string;
  /** The command-line flag; none when the command has no option for it. */
  cli?: CliFlag;
  /** The action's input of the same meaning; none when the action has none. */
  input?: string;
  kind: OptionKind;
  /** The accepted values of a choice, the default first where there is one. */
  choices?: readonly string[];
  /** The value (as INI text) that applies when the key is unset. */
  default?: string;
  /** How the default reads in the documentation, when it is not a fixed value. */
  defaultDoc?: string;
  /** The default action.yml gives the input (the runner then always passes a value). */
  inputDefault?: string;
  /** The action fails without this input. */
  required?: true;
  /** Not in the original image-factory. */
  new?: true;
  /** Durations: 0 is accepted, and turns the option off. */
  zeroTurnsOff?: true;
  /** A further check of the (trimmed, non-empty) value: the problem, worded after the value, or undefined. */
  check?: (value: string) => string | undefined;
  /** One line for --help and docs/options.md. */
  help: string;
}

const MAC_PATTERN = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

function checkMac(value: string): string | undefined {
  const mac = value.toLowerCase();
  if (!MAC_PATTERN.test(mac)) return 'is not a MAC address; use six hex pairs like 52:54:00:12:34:56.';
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    return 'is a multicast address; a network card needs a unicast one (first byte even, e.g. 52:54:00:…).';
  }
  return undefined;
}

/**
 * LISTEN:DISPLAY as `{ listen, port }`, or undefined. LISTEN is empty, a host
 * name, an IPv4 address or an IPv6 address in brackets: nothing that could
 * add a sub-option to virt-install's `--graphics` (no `,` or `=`).
 */
export function parseVnc(value: string): { listen: string; port: number } | undefined {
  const match =
    /^(?:\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)?):([0-9]{1,5})$/.exec(
      value.trim(),
    );
  if (!match || Number(match[3]) > 65535 - 5900) return undefined;
  return { listen: match[1] ?? match[2] ?? '', port: 5900 + Number(match[3]) };
}

/** How many cores an installing VM may have: the host's, times this. */
export const CORES_PER_HOST_CORE = 4;

function checkCores(value: string): string | undefined {
  const most = availableParallelism() * CORES_PER_HOST_CORE;
  if (Number(value) <= most) return undefined;
  return `is more than ${CORES_PER_HOST_CORE} times this host's ${availableParallelism()} cores; use at most ${most}.`;
}

/** The smallest disk: 1 MiB, where the first partition of an aligned partition table starts. */
export const MIN_IMAGE_SIZE = 2 ** 20;

export const OPTIONS = [
  {
    input: 'image',
    kind: 'string',
    required: true,
    help: 'the image to build: a section of the configuration (the command takes it as its argument, or from $IMAGE)',
  },
  {
    input: 'config',
    kind: 'file',
    new: true,
    help: 'an INI file read after the other configuration files (the command reads the file $IMAGE_FACTORY_CONFIG names instead of them)',
  },
  { input: 'config-text', kind: 'text', new: true, help: 'INI text read after `config`' },
  {
    key: 'linux',
    kind: 'uri',
    help: 'netboot kernel: `http:`, `https:`, `rsync:`, `file:` URI or a path (`~` expands, relative to the working folder); cached in `<cache_dir>/<image>/`, revalidated with ETag/Last-Modified',
  },
  { key: 'initrd', kind: 'uri', help: 'netboot initrd, as `linux`' },
  { key: 'installer_image', kind: 'uri', new: true, help: 'an installer image instead of `linux`/`initrd`' },
  {
    key: 'linux_sha256',
    kind: 'checksum',
    new: true,
    help: 'expected SHA-256 of `linux`; a cached file that matches is used without network access',
  },
  { key: 'initrd_sha256', kind: 'checksum', new: true, help: 'expected SHA-256 of `initrd`' },
  // Verification of the installer files against the distribution's signed checksums (verification-spec.ts).
  {
    key: 'installer-checksums',
    kind: 'uri',
    new: true,
    help: "the distribution's checksum list of the installer files (sha256sum or BSD-style `SHA256 (file) = hex` lines; SHA256SUMS, CHECKSUM, *.sha256): `http:`, `https:`, `file:` URI or a path; fetched afresh on every build, and every installer file (cached or not) must match it",
  },
  {
    key: 'installer-signature',
    kind: 'uri',
    new: true,
    help: 'a detached OpenPGP signature over `installer-checksums` (SHA256SUMS.gpg, *.sha256.asc); without it and `installer-release`, the checksum list itself must be clearsigned',
  },
  {
    key: 'installer-release',
    kind: 'uri',
    new: true,
    help: "a clearsigned release file that lists the SHA-256 of `installer-checksums` (Debian's `dists/<codename>/InRelease`)",
  },
  {
    key: 'installer-keyring',
    kind: 'path',
    new: true,
    help: "the distribution's public keys, a keyring file as gpgv reads it (not ASCII-armoured): the signature must be by one of them; unset: the checksum list is used unsigned",
  },
  {
    key: 'linux_checksum_name',
    kind: 'string',
    new: true,
    help: "`linux`'s name in the checksum list (default: its URL's path below the list's folder)",
  },
  { key: 'initrd_checksum_name', kind: 'string', new: true, help: "`initrd`'s name in the checksum list" },
  {
    key: 'installer_image_checksum_name',
    kind: 'string',
    new: true,
    help: "`installer_image`'s name in the checksum list",
  },
  { key: 'preseed', kind: 'answer-file', help: 'the answer file of debian-installer' },
  { key: 'kickstart', kind: 'answer-file', help: 'the answer file of anaconda (Kickstart)' },
  { key: 'yast', kind: 'answer-file', help: 'the answer file of AutoYaST' },
  {
    key: 'autoinstall',
    kind: 'answer-file',
    new: true,
    help: "the answer file of Ubuntu's subiquity (needs answer-delivery = http)",
  },
  {
    key: 'answer-delivery',
    kind: 'choice',
    choices: ['inject', 'http'],
    default: 'inject',
    new: true,
    help: 'inject the answer file into the initrd, or serve it over http from the host at 10.0.2.2 during the install',
  },
  { key: 'append', kind: 'string', default: '', help: 'extra kernel arguments' },
  {
    key: 'osinfo',
    kind: 'string',
    default: 'linux2022',
    new: true,
    check: checkOsinfo,
    help: "virt-install's OS name",
  },
  {
    key: 'cpu',
    kind: 'string',
    new: true,
    check: (value) =>
      /^[A-Za-z0-9][A-Za-z0-9=,._-]*$/.test(value)
        ? undefined
        : 'is not a virt-install --cpu value such as mode=maximum, host-passthrough or host-model.',
    help: "virt-install's --cpu, e.g. mode=maximum",
  },
  { key: 'ram', kind: 'size', default: '1G', help: 'memory of the installing VM (at least 128 MiB)' },
  { key: 'cores', kind: 'count', default: '1', check: checkCores, help: 'CPU cores of the installing VM' },
  {
    key: 'cache_dir',
    cli: { long: 'cache-dir', short: 'c', arg: 'dir' },
    input: 'cache-dir',
    kind: 'path',
    defaultDoc: '/var/cache/image-factory as root, ~/.cache/image-factory otherwise',
    help: 'cache folder for installer files; each image gets a subfolder',
  },
  {
    key: 'format',
    cli: { long: 'format', short: 'f', arg: 'format' },
    input: 'format',
    kind: 'choices',
    choices: ['raw', 'qcow2', 'vmdk', 'vhdx', 'vhd'],
    default: 'raw',
    help: 'image format, or a comma-separated list of them, all converted from one install (`qcow2, vmdk`); vmdk is streamOptimized (VMware, OVA), vhd is fixed with its size rounded up to 1 MiB (Azure); the first is the one the boot test boots',
  },
  {
    key: 'image-size',
    cli: { long: 'image-size', arg: 'size' },
    input: 'image-size',
    kind: 'size',
    default: '2G',
    check: (value) =>
      (parseBytes(value) ?? 0) < MIN_IMAGE_SIZE ? 'is too small for a partition table; use at least 1 MiB.' : undefined,
    help: "size of the image's disk, e.g. 4G (legacy binary), '4 GiB', '5 GB'",
  },
  {
    key: 'keep-raw',
    kind: 'boolean',
    default: 'no',
    help: 'keep the raw image beside the images of the other formats (when raw is not among them)',
  },
  {
    key: 'mac',
    cli: { long: 'mac', arg: 'mac' },
    input: 'mac',
    kind: 'string',
    check: checkMac,
    help: 'MAC address of the installing machine',
  },
  {
    key: 'vnc',
    kind: 'string',
    check: (value) =>
      parseVnc(value)
        ? undefined
        : 'is not a VNC display; use LISTEN:DISPLAY such as localhost:1 (port 5901), :1 or [::1]:1, ' +
          'where LISTEN is a host name or an IP address (IPv6 in brackets).',
    help: 'VNC display of the installing machine as LISTEN:N (port 5900+N)',
  },
  {
    key: 'installer-logs',
    cli: { long: 'installer-logs', noHelp: 'do not print installer logs' },
    input: 'installer-logs',
    kind: 'boolean',
    default: 'no',
    help: 'print installer logs and the console into the log output',
  },
  {
    key: 'log-file',
    cli: { long: 'log-file', noHelp: 'do not write a log file' },
    input: 'log-file',
    kind: 'boolean',
    default: 'no',
    help: 'also write the log to a file (<image>-<date>.log unless log-filename says otherwise)',
  },
  {
    key: 'log-filename',
    cli: { long: 'log-filename', arg: 'file' },
    input: 'log-filename',
    kind: 'path',
    help: 'the log file to write when logging to a file, relative to the output folder',
  },
  {
    key: 'accelerator',
    cli: { long: 'accelerator', arg: 'name' },
    input: 'accelerator',
    kind: 'choice',
    choices: ['auto', 'kvm', 'tcg'],
    default: 'auto',
    new: true,
    help: 'kvm, tcg (software emulation: works everywhere, slow) or auto (kvm when /dev/kvm is usable)',
  },
  {
    key: 'arch',
    cli: { long: 'arch', arg: 'arch' },
    input: 'arch',
    kind: 'choice',
    choices: ['x86_64', 'aarch64'],
    defaultDoc: "the host's architecture",
    new: true,
    help: "architecture of the image: x86_64 or aarch64 (the virt machine, always UEFI); KVM when it is the host's, emulated (TCG) otherwise",
  },
  {
    key: 'firmware',
    cli: { long: 'firmware', arg: 'firmware' },
    input: 'firmware',
    kind: 'choice',
    choices: ['bios', 'uefi', 'uefi-secure'],
    default: 'bios',
    new: true,
    help: 'firmware of the installing and the boot-test VM: bios (SeaBIOS), uefi (OVMF) or uefi-secure (OVMF with Secure Boot on and the Microsoft keys enrolled)',
  },
  {
    key: 'install-timeout',
    cli: { long: 'install-timeout', arg: 'duration' },
    input: 'install-timeout',
    kind: 'duration',
    default: '3h',
    new: true,
    help: 'stop the installer after this long, e.g. 90m, 3h',
  },
  {
    key: 'stall-timeout',
    cli: { long: 'stall-timeout', arg: 'duration' },
    input: 'stall-timeout',
    kind: 'duration',
    default: '15m',
    zeroTurnsOff: true,
    new: true,
    help: "stop the installer when its screen (a status line's clock aside) and its disk have not changed for this long: it is waiting for an answer; 0 turns this off",
  },
  {
    key: 'zero-free-space',
    cli: { long: 'zero-free-space', arg: 'how' },
    input: 'zero-free-space',
    kind: 'choice',
    choices: ['discard', 'zerofree', 'none'],
    default: 'discard',
    new: true,
    help: 'how free space is zeroed so the image compresses: discard (fast; on a work folder that cannot punch holes, through a qcow2 overlay; where it releases nothing: zerofree on ext*, zeros written on the others), zerofree or none',
  },
  {
    key: 'generalize',
    cli: { long: 'generalize', arg: 'how' },
    input: 'generalize',
    kind: 'choice',
    choices: ['yes', 'check', 'no'],
    default: 'yes',
    new: true,
    help:
      'make the image safe to clone after the install, as virt-sysprep does: yes (empty the machine ID, remove SSH host keys, ' +
      'DHCP leases, random seed, cloud-init state, shell histories, /tmp, package caches), check (only report them) or no',
  },
  {
    key: 'previous-manifest',
    cli: { long: 'previous-manifest', arg: 'manifest' },
    input: 'previous-manifest',
    kind: 'uri',
    new: true,
    help: "an earlier build's <image>-<date>.manifest.json (a path or an http(s) URL): the build writes <image>-<date>.changes, the packages added, removed, upgraded and downgraded since, and the image's size change (the action keeps the last manifest of each image in the Actions cache and uses it when this is unset)",
  },
  {
    key: 'previous-metrics',
    cli: { long: 'previous-metrics', arg: 'files' },
    input: 'previous-metrics',
    kind: 'list',
    new: true,
    help: "earlier builds' <image>-<date>.metrics.json (paths or http(s) URLs, comma-separated or one a line): the build compares its steps' times, size and package count with the newest, and the action's job summary charts them (the action keeps the last 12 builds' metrics in the Actions cache and uses them when this is unset)",
  },
  {
    key: 'skip-unchanged',
    cli: { long: 'skip-unchanged', noHelp: 'publish the image even when nothing changed' },
    input: 'skip-unchanged',
    kind: 'boolean',
    default: 'no',
    new: true,
    help: "publish and upload nothing when the packages (names, versions, architectures) and the inputs' SHA-256 (answer file, installer files, provisioning) equal the previous manifest's; the boot test still runs",
  },
  {
    key: 'compress',
    cli: { long: 'compress', arg: 'how' },
    input: 'compress',
    kind: 'choice',
    choices: ['none', 'zlib', 'zstd'],
    default: 'none',
    new: true,
    help: 'compress the qcow2 clusters',
  },
  {
    key: 'boot-test',
    cli: { long: 'boot-test', noHelp: 'do not boot-test the image' },
    input: 'boot-test',
    kind: 'boolean',
    default: 'no',
    new: true,
    help: 'boot the finished image in a throw-away VM and fail unless it comes up (before any upload)',
  },
  { key: 'boot-timeout', kind: 'duration', default: '10m', new: true, help: 'time limit of the boot test' },
  {
    key: 'boot-test-expect',
    kind: 'regex',
    default: '\\blogin: *$',
    defaultDoc: 'a login prompt',
    new: true,
    help: 'regular expression the console must show in the boot test',
  },
  {
    key: 'boot-test-cloud-init',
    kind: 'boolean',
    default: 'yes',
    new: true,
    help: 'the boot test attaches a NoCloud seed and requires cloud-init to finish',
  },
  {
    key: 'signing-key',
    cli: { long: 'signing-key', arg: 'file' },
    kind: 'path',
    new: true,
    help: 'an OpenPGP secret key (a file, ASCII-armoured or binary): the build signs SHA256SUMS with it into <image>-<date>.SHA256SUMS.gpg, a detached signature that `gpgv --keyring KEY.gpg SHA256SUMS.gpg SHA256SUMS` checks',
  },
  {
    input: 'signing-key',
    kind: 'text',
    new: true,
    help: "the ASCII-armoured OpenPGP secret key itself, from a secret (`secrets.SIGNING_KEY`): as the configuration's signing-key, which it replaces; masked in the log",
  },
  {
    key: 'signing-passphrase-file',
    cli: { long: 'signing-passphrase-file', arg: 'file' },
    kind: 'path',
    new: true,
    help: 'a file whose first line is the passphrase of signing-key (given to gpg on its standard input, never on a command line)',
  },
  {
    input: 'signing-passphrase',
    kind: 'text',
    new: true,
    help: 'the passphrase of the signing key, from a secret: as signing-passphrase-file; masked in the log',
  },
  {
    key: 'provision',
    cli: { long: 'provision', arg: 'line', repeatable: true },
    input: 'provision',
    kind: 'lines',
    new: true,
    help:
      'provisioners run over SSH in the installed system before the scrub, one a line, in order: `file SRC DEST`, ' +
      '`script PATH [ARGS…]`, `shell COMMAND…`, `ansible PLAYBOOK [ansible-playbook options…]` (see docs/provisioning.md)',
  },
  {
    key: 'provision-env',
    kind: 'lines',
    new: true,
    help: 'variables for `script` and `shell` provisioners, one `NAME=VALUE` a line; `secret NAME=VALUE` is masked in every output',
  },
  {
    key: 'provision-timeout',
    cli: { long: 'provision-timeout', arg: 'duration' },
    input: 'provision-timeout',
    kind: 'duration',
    default: '30m',
    new: true,
    help: "time limit of the provisioning boot's way to SSH, and of each provisioner",
  },
  {
    key: 'boot-test-command',
    cli: { long: 'boot-test-command', arg: 'command', repeatable: true },
    input: 'boot-test-command',
    kind: 'lines',
    new: true,
    help: 'commands run over SSH as root in the booted image during the boot test, one a line; a non-zero exit fails the build before publishing',
  },
  {
    key: 'boot-test-playbook',
    cli: { long: 'boot-test-playbook', arg: 'playbook' },
    input: 'boot-test-playbook',
    kind: 'path',
    new: true,
    help: "an Ansible playbook run with the host's ansible-playbook against the booted image during the boot test",
  },
  {
    key: 'upload_destinations',
    kind: 'list',
    help: 'comma-separated sections to upload to (unset: no upload)',
  },
  {
    key: 'post-build-command',
    kind: 'string',
    help: "run after a successful build with the image's file name as its argument",
  },
  {
    cli: { long: 'upload', onlyNo: true, noHelp: 'build without uploading to upload_destinations' },
    input: 'upload',
    kind: 'boolean',
    inputDefault: 'true',
    new: true,
    help: "upload to the image's upload_destinations",
  },
  {
    cli: { long: 'output-dir', short: 'o', arg: 'dir' },
    input: 'output-dir',
    kind: 'path',
    inputDefault: '${{ github.workspace }}',
    defaultDoc: 'the current folder',
    new: true,
    help: 'folder for the image, checksum and logs',
  },
  {
    cli: { long: 'install-dependencies' },
    input: 'install-dependencies',
    kind: 'boolean',
    inputDefault: 'true',
    new: true,
    help: 'first install missing host tools (apt-get or dnf), start libvirt if nothing runs it, open a root-only /dev/kvm to the kvm group',
  },
  {
    key: 'strict',
    cli: { long: 'strict' },
    kind: 'boolean',
    default: 'no',
    new: true,
    help: 'a key that no option and no reference uses (a misspelt one) is an error, not a warning',
  },
  {
    cli: { long: 'print-config' },
    kind: 'boolean',
    new: true,
    help: "print the image's resolved settings as JSON (configparser's items() after the options) and exit",
  },
  {
    cli: { long: 'show-secrets' },
    kind: 'boolean',
    new: true,
    help: 'with --print-config: show passwords in URIs instead of ***',
  },
  {
    cli: { long: 'dry-run' },
    kind: 'boolean',
    new: true,
    help: 'print every command the build would run, and run none',
  },
] as const satisfies readonly OptionSpec[];

function checkOsinfo(value: string): string | undefined {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)) return undefined;
  return "is not an OS name; use a short id from 'virt-install --osinfo list' such as debian12 or linux2022.";
}

export type OptionEntry = (typeof OPTIONS)[number];
/** The options that are keys of an image's section. */
export type KeyedOption = Extract<OptionEntry, { key: string }>;
export type OptionKey = KeyedOption['key'];
/** The keys of one kind. */
export type KeyOfKind<K extends OptionKind> = Extract<KeyedOption, { kind: K }>['key'];
/** The values of a choice, or of each item of a list of choices: ChoiceOf<'compress'> = 'none' | 'zlib' | 'zstd'. */
export type ChoiceOf<K extends KeyOfKind<'choice' | 'choices'>> = Extract<KeyedOption, { key: K }>['choices'][number];

type ValueOf<E extends OptionEntry> = E['kind'] extends 'boolean' ? boolean : string;
type Camel<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<Camel<Tail>>}` : S;

/** Options given on the command line or as action inputs, by INI key. They win over the files. */
export type Overrides = {
  [E in Extract<KeyedOption, { cli: CliFlag } | { input: string }> as E['key']]?: ValueOf<E>;
};

/** The command's options as commander returns them (camelCase of the long flag). */
export type CliOptions = {
  [E in Extract<OptionEntry, { cli: CliFlag }> as Camel<E['cli']['long']>]?: ValueOf<E>;
};

export function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** The entry of an INI key. */
export function optionByKey<K extends OptionKey>(key: K): Extract<KeyedOption, { key: K }> {
  return OPTIONS.find((entry) => 'key' in entry && entry.key === key) as Extract<KeyedOption, { key: K }>;
}

/** The entry of an action input, or undefined. */
export function optionByInput(input: string): OptionSpec | undefined {
  return (OPTIONS as readonly OptionSpec[]).find((entry) => entry.input === input);
}

/** The entry of a long flag (without dashes), or undefined. */
export function optionByFlag(long: string): OptionSpec | undefined {
  return (OPTIONS as readonly OptionSpec[]).find((entry) => entry.cli?.long === long);
}

export const CONFIG_BOOLEAN_WORDS = '1/yes/true/on or 0/no/false/off';

/**
 * What is wrong with a value of the option, worded to follow the name of
 * where it was given (`--format: `, `Input 'format': `, `[img] format: `), or
 * undefined when it is fine. Booleans are checked with configparser's words;
 * the action checks its own (YAML's) before it passes them on.
 */
export function valueProblem(entry: OptionSpec, text: string): string | undefined {
  const value = entry.kind === 'regex' ? text : text.trim();
  switch (entry.kind) {
    case 'choice':
      if (!(entry.choices ?? []).includes(value))
        return `'${value}' is not one of ${(entry.choices ?? []).join(', ')}.`;
      break;
    case 'choices': {
      const problem = choicesProblem(entry.choices ?? [], value);
      if (problem !== undefined) return problem;
      break;
    }
    case 'size': {
      const problem = sizeProblem(value);
      if (problem !== undefined) return `'${text}' ${problem}`;
      break;
    }
    case 'duration': {
      if (entry.zeroTurnsOff && parseDuration(value) === 0) break;
      const problem = durationProblem(value);
      if (problem !== undefined)
        return `'${text}' ${problem.replace(/\.$/, entry.zeroTurnsOff ? ', or 0 to turn it off.' : '.')}`;
      break;
    }
    case 'count':
      if (!/^[1-9][0-9]*$/.test(value)) return `'${text}' is not a whole number (1 or more).`;
      break;
    case 'boolean':
      if (parseBoolean(value) === undefined) return `'${text}' is not a boolean; use ${CONFIG_BOOLEAN_WORDS}.`;
      break;
    case 'regex':
      try {
        new RegExp(value, 'm');
      } catch (error) {
        return `'${value}' is not a regular expression: ${(error as Error).message}.`;
      }
      break;
    default:
      break;
  }
  if (entry.check !== undefined && value !== '') {
    const problem = entry.check(value);
    if (problem !== undefined) return `'${text}' ${problem}`;
  }
  return undefined;
}

/** The items of a comma-separated list of choices, trimmed (empty items kept, for the check to name). */
export function listItems(value: string): string[] {
  return value.split(',').map((item) => item.trim());
}

/** What is wrong with a comma-separated list of choices: an empty item, one not accepted, one given twice. */
function choicesProblem(choices: readonly string[], value: string): string | undefined {
  const items = listItems(value);
  const accepted = `one or more of ${choices.join(', ')}, separated by commas`;
  if (items.some((item) => item === '')) return `'${value}' has an empty item; give ${accepted}.`;
  const unknown = items.find((item) => !choices.includes(item));
  if (unknown !== undefined) {
    const where = items.length > 1 ? ` (in '${value}')` : '';
    return `'${unknown}'${where} is not one of ${choices.join(', ')}.`;
  }
  const twice = items.find((item, index) => items.indexOf(item) !== index);
  if (twice !== undefined) return `'${value}' names ${twice} twice; name each once.`;
  return undefined;
}

/** Where a value was given: a flag, an action input, or a key of an image's section at a place in a file. */
export type Door = { flag: true } | { input: true } | { image: string; at: string };

/** The name of the option at a door: `--format`, `Input 'format'`, `file:3: [img] format`. */
export function doorLabel(entry: OptionSpec, door: Door): string {
  if ('flag' in door) return `--${entry.cli?.long}`;
  if ('input' in door) return `Input '${entry.input}'`;
  return `${door.at}[${door.image}] ${entry.key}`;
}

/** The one wording of a bad value, at any door: `--format: 'vmdk' is not one of raw, qcow2.` */
export function badValueMessage(entry: OptionSpec, door: Door, problem: string): string {
  return `${doorLabel(entry, door)}: ${problem}`;
}

/** The --help line of an option: its help, then its values and default where it has them. */
export function flagHelp(entry: OptionSpec): string {
  const notes: string[] = [];
  if (entry.choices)
    notes.push(`${entry.kind === 'choices' ? 'one or more of' : 'one of'} ${entry.choices.join(', ')}`);
  const fallback = entry.defaultDoc ?? (entry.kind === 'boolean' ? undefined : entry.default);
  if (fallback) notes.push(`default: ${fallback}`);
  return notes.length ? `${entry.help} (${notes.join('; ')})` : entry.help;
}
