/**
 * A structural check of Kickstart files, for the answer files that
 * image-factory ships: not a Kickstart parser (pykickstart is not on the test
 * machines), but enough to catch what breaks an unattended image build or the
 * image's promises (GPT with a BIOS boot partition on x86_64, an EFI system
 * partition and ext4 on /, no swap, power off, root locked).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Commands of current Kickstart syntax (pykickstart's Fedora / RHEL handlers). */
export const KICKSTART_COMMANDS: ReadonlySet<string> = new Set([
  'auth',
  'authconfig',
  'authselect',
  'autopart',
  'autostep',
  'bootc',
  'bootloader',
  'btrfs',
  'cdrom',
  'clearpart',
  'cmdline',
  'device',
  'deviceprobe',
  'dmraid',
  'driverdisk',
  'eula',
  'fcoe',
  'firewall',
  'firstboot',
  'graphical',
  'group',
  'halt',
  'harddrive',
  'hmc',
  'ignoredisk',
  'install',
  'interactive',
  'iscsi',
  'iscsiname',
  'keyboard',
  'lang',
  'langsupport',
  'liveimg',
  'logging',
  'logvol',
  'mediacheck',
  'method',
  'module',
  'monitor',
  'mount',
  'mouse',
  'multipath',
  'network',
  'nfs',
  'nvdimm',
  'ostreecontainer',
  'ostreesetup',
  'part',
  'partition',
  'poweroff',
  'raid',
  'realm',
  'reboot',
  'repo',
  'reqpart',
  'rescue',
  'rhsm',
  'rootpw',
  'selinux',
  'services',
  'shutdown',
  'skipx',
  'snapshot',
  'sshkey',
  'sshpw',
  'syspurpose',
  'text',
  'timesource',
  'timezone',
  'updates',
  'upgrade',
  'url',
  'user',
  'vnc',
  'volgroup',
  'xconfig',
  'zerombr',
  'zfcp',
  'zipl',
]);

/** Commands that may be given more than once. */
const REPEATABLE: ReadonlySet<string> = new Set([
  'part',
  'partition',
  'logvol',
  'volgroup',
  'raid',
  'btrfs',
  'network',
  'repo',
  'user',
  'group',
  'sshkey',
  'sshpw',
  'device',
  'driverdisk',
  'fcoe',
  'iscsi',
  'zfcp',
  'nvdimm',
  'module',
  'snapshot',
  'timesource',
  'mount',
]);

/** Sections: `%name ...` up to `%end`. */
export const KICKSTART_SECTIONS: ReadonlySet<string> = new Set([
  '%packages',
  '%pre',
  '%pre-install',
  '%post',
  '%onerror',
  '%traceback',
  '%addon',
  '%anaconda',
  '%certificate',
]);

/** Directives that stand alone, outside sections. */
const DIRECTIVES: ReadonlySet<string> = new Set(['%include', '%ksappend']);

/** The guest architectures, as `uname -m` names them. */
export type KickstartArch = 'x86_64' | 'aarch64';

/**
 * The partitions of the cloud images' layout, by architecture: mount point
 * (or biosboot) → --fstype. aarch64 boots only UEFI: no BIOS boot partition.
 */
const CLOUD_LAYOUTS: Record<KickstartArch, Record<string, string>> = {
  x86_64: { biosboot: 'biosboot', '/boot/efi': 'efi', '/': 'ext4' },
  aarch64: { '/boot/efi': 'efi', '/': 'ext4' },
};

/** The machine's serial console: the PC's 16550, the virt machine's PL011. */
export const SERIAL_CONSOLE: Record<KickstartArch, string> = { x86_64: 'ttyS0', aarch64: 'ttyAMA0' };

/** Partitioning commands other than `part` that would make more partitions. */
const OTHER_STORAGE = ['autopart', 'reqpart', 'logvol', 'volgroup', 'raid', 'btrfs'];

export interface KickstartCommand {
  name: string;
  args: string[];
  line: number;
}

export interface KickstartSection {
  /** `%packages`, `%post`, …, or `%addon com_redhat_kdump` style names keep only the first word. */
  name: string;
  args: string[];
  line: number;
  /** The lines between the header and `%end`. */
  body: string[];
}

export interface KickstartReport {
  commands: KickstartCommand[];
  sections: KickstartSection[];
  /** What is wrong, one message each, with the line number where there is one. */
  problems: string[];
}

/** Split a command line into words the way the shell (and pykickstart's shlex) does. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

/** The value of `--name=value` or `--name value` in args, or undefined. */
export function optionValue(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i += 1) {
    if (args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
    if (args[i] === name && i + 1 < args.length) return args[i + 1];
  }
  return undefined;
}

/**
 * Read a Kickstart file's text into commands and sections, and say what is
 * wrong with it for the image of `arch` (its layout and serial console).
 */
export function checkKickstart(text: string, arch: KickstartArch = 'x86_64'): KickstartReport {
  const CLOUD_LAYOUT = CLOUD_LAYOUTS[arch];
  const commands: KickstartCommand[] = [];
  const sections: KickstartSection[] = [];
  const problems: string[] = [];
  let open: KickstartSection | undefined;

  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (open) {
      if (trimmed === '%end') {
        sections.push(open);
        open = undefined;
      } else if (trimmed.startsWith('%') && KICKSTART_SECTIONS.has(trimmed.split(/\s+/)[0])) {
        problems.push(
          `line ${line}: ${trimmed.split(/\s+/)[0]} starts inside ${open.name} (line ${open.line}), which has no %end`,
        );
      } else {
        open.body.push(raw);
      }
      return;
    }
    if (trimmed === '' || trimmed.startsWith('#')) return;
    let words: string[];
    try {
      words = splitWords(trimmed);
    } catch (error) {
      problems.push(`line ${line}: ${(error as Error).message}`);
      return;
    }
    const [name, ...args] = words;
    if (name === '%end') {
      problems.push(`line ${line}: %end without a section to end`);
    } else if (KICKSTART_SECTIONS.has(name)) {
      open = { name, args, line, body: [] };
    } else if (DIRECTIVES.has(name)) {
      commands.push({ name, args, line });
    } else if (name.startsWith('%')) {
      problems.push(`line ${line}: unknown section or directive ${name}`);
    } else if (!KICKSTART_COMMANDS.has(name)) {
      problems.push(`line ${line}: unknown Kickstart command '${name}'`);
    } else {
      commands.push({ name, args, line });
    }
  });
  if (open) problems.push(`line ${open.line}: ${open.name} has no %end`);

  const named = (...names: string[]): KickstartCommand[] => commands.filter((c) => names.includes(c.name));

  const seen = new Map<string, number>();
  for (const command of commands) {
    if (REPEATABLE.has(command.name) || DIRECTIVES.has(command.name)) continue;
    const first = seen.get(command.name);
    if (first !== undefined) problems.push(`line ${command.line}: '${command.name}' is already given on line ${first}`);
    else seen.set(command.name, command.line);
  }

  // Storage: the cloud images' layout (GPT, BIOS boot, EFI system partition, ext4 on /), and nothing else.
  for (const command of named(...OTHER_STORAGE)) {
    problems.push(
      `line ${command.line}: '${command.name}' makes partitions of its own; the image has exactly the layout it names`,
    );
  }
  const clearpart = named('clearpart')[0];
  if (clearpart && optionValue(clearpart.args, '--disklabel') !== 'gpt')
    problems.push(`line ${clearpart.line}: clearpart without --disklabel=gpt; the image's partition table is GPT`);
  const parts = named('part', 'partition');
  const found: string[] = [];
  for (const part of parts) {
    const mount = part.args.find((arg) => !arg.startsWith('-'));
    const fstype = optionValue(part.args, '--fstype');
    if (
      mount === 'swap' ||
      fstype === 'swap' ||
      part.args.includes('--recommended') ||
      part.args.includes('--hibernation')
    ) {
      problems.push(`line ${part.line}: a swap partition; the image must have none`);
    } else if (!Object.hasOwn(CLOUD_LAYOUT, mount ?? '')) {
      problems.push(
        `line ${part.line}: a partition for '${mount ?? '(no mount point)'}'; the layout is ${Object.keys(CLOUD_LAYOUT).join(', ')}`,
      );
    } else if (fstype !== CLOUD_LAYOUT[mount as string]) {
      problems.push(
        `line ${part.line}: ${mount} is '${fstype ?? '(no --fstype)'}'; it must be --fstype=${CLOUD_LAYOUT[mount as string]}`,
      );
    } else found.push(mount as string);
  }
  const missing = Object.keys(CLOUD_LAYOUT).filter((mount) => !found.includes(mount));
  if (missing.length || parts.length !== Object.keys(CLOUD_LAYOUT).length)
    problems.push(
      `${parts.length} part commands, missing ${missing.join(', ') || 'none'}; the ${arch} image has exactly ${Object.keys(
        CLOUD_LAYOUT,
      )
        .map((mount) => `part ${mount}`)
        .join(', ')}`,
    );

  // The end of the installation: power off, nothing else.
  for (const command of named('reboot', 'halt', 'shutdown')) {
    problems.push(`line ${command.line}: '${command.name}'; the installer must power off (poweroff)`);
  }
  if (named('poweroff').length === 0)
    problems.push("no 'poweroff': the installer would wait instead of powering the machine off");

  // Root: a locked password, never a usable one.
  const rootpw = named('rootpw');
  if (rootpw.length === 0) problems.push("no 'rootpw': use rootpw --lock");
  for (const command of rootpw) {
    const password = command.args.find((arg) => !arg.startsWith('--'));
    const lockedHash = command.args.includes('--iscrypted') && password !== undefined && /^[!*]/.test(password);
    if (!command.args.includes('--lock') && !lockedHash) {
      problems.push(`line ${command.line}: root gets a usable password; use rootpw --lock (or --iscrypted '!')`);
    } else if (password !== undefined && !lockedHash && command.args.includes('--plaintext')) {
      problems.push(`line ${command.line}: a plain-text root password in the image's answer file`);
    }
  }

  // The installed system's kernel console on the serial port.
  const bootloader = named('bootloader');
  const append = bootloader.length ? (optionValue(bootloader[0].args, '--append') ?? '') : '';
  const consoleName = SERIAL_CONSOLE[arch];
  if (!new RegExp(`(^|\\s)console=${consoleName}(,|\\s|$)`).test(append)) {
    problems.push(
      `the boot loader's kernel arguments lack console=${consoleName} (bootloader --append="console=${consoleName},115200n8")`,
    );
  }
  for (const other of Object.values(SERIAL_CONSOLE).filter((name) => name !== consoleName)) {
    if (new RegExp(`(^|\\s)console=${other}(,|\\s|$)`).test(append))
      problems.push(
        `the boot loader's kernel arguments name console=${other}, which the ${arch} machine does not have`,
      );
  }

  return { commands, sections, problems };
}

/** The package lines of the %packages section (comments and blank lines left out). */
export function kickstartPackages(report: KickstartReport): string[] {
  return report.sections
    .filter((section) => section.name === '%packages')
    .flatMap((section) => section.body.map((line) => line.trim()))
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** The text with each `%include` replaced by the file it names, as %pre writes it on `arch`. */
export interface ExpandedKickstart {
  text: string;
  /** What went wrong running %pre: a failed script, an include that no %pre wrote. */
  problems: string[];
}

/**
 * Run a Kickstart file's %pre sections as anaconda does before it reads
 * `%include` files (with sh, in a scratch folder that stands for /tmp, and a
 * `uname` that answers `arch` to -m), then put each generated file's lines
 * in place of its `%include`. Only %pre's own interpreter (sh) is supported.
 */
export function expandPreIncludes(text: string, arch: KickstartArch): ExpandedKickstart {
  const report = checkKickstart(text, arch);
  const problems: string[] = [];
  const includes = report.commands.filter((command) => command.name === '%include').map((command) => command.args[0]);
  if (includes.length === 0) return { text, problems };
  const scratch = mkdtempSync(join(tmpdir(), 'kickstart-pre-'));
  try {
    const bin = join(scratch, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'uname'), `#!/bin/sh\nif [ "$1" = -m ]; then echo ${arch}; else echo Linux; fi\n`);
    chmodSync(join(bin, 'uname'), 0o755);
    const local = (path: string): string => join(scratch, path.replace(/[^A-Za-z0-9._-]/g, '_'));
    for (const section of report.sections.filter((s) => s.name === '%pre')) {
      if (section.args.some((arg) => arg.startsWith('--interpreter'))) {
        problems.push(`line ${section.line}: %pre with another interpreter than sh`);
        continue;
      }
      let script = section.body.join('\n');
      for (const path of includes) script = script.split(path).join(local(path));
      const run = spawnSync('sh', ['-c', script], {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
      });
      if (run.status !== 0) problems.push(`line ${section.line}: %pre fails: exit ${run.status}: ${run.stderr.trim()}`);
    }
    const lines = text.split(/\r?\n/).flatMap((line) => {
      const match = /^\s*%include\s+(\S+)\s*$/.exec(line);
      if (!match) return [line];
      try {
        return readFileSync(local(match[1]), 'utf8').replace(/\n$/, '').split('\n');
      } catch {
        problems.push(`%include ${match[1]}: no %pre section wrote it`);
        return [line];
      }
    });
    return { text: lines.join('\n'), problems };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
