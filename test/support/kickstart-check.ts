/**
 * A structural check of Kickstart files, for the answer files that
 * image-factory ships: not a Kickstart parser (pykickstart is not on the test
 * machines), but enough to catch what breaks an unattended image build or the
 * image's promises (GPT with a BIOS boot partition, an EFI system partition
 * and ext4 on /, no swap, power off, root locked).
 */

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

/** The partitions of the cloud images' layout: mount point (or biosboot) → --fstype. */
const CLOUD_LAYOUT = { biosboot: 'biosboot', '/boot/efi': 'efi', '/': 'ext4' } as const;

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

/** Read a Kickstart file's text into commands and sections, and say what is wrong with it. */
export function checkKickstart(text: string): KickstartReport {
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
    } else if (fstype !== CLOUD_LAYOUT[mount as keyof typeof CLOUD_LAYOUT]) {
      problems.push(
        `line ${part.line}: ${mount} is '${fstype ?? '(no --fstype)'}'; it must be --fstype=${CLOUD_LAYOUT[mount as keyof typeof CLOUD_LAYOUT]}`,
      );
    } else found.push(mount as string);
  }
  const missing = Object.keys(CLOUD_LAYOUT).filter((mount) => !found.includes(mount));
  if (missing.length || parts.length !== Object.keys(CLOUD_LAYOUT).length)
    problems.push(
      `${parts.length} part commands, missing ${missing.join(', ') || 'none'}; the image has exactly part biosboot, part /boot/efi and part /`,
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
  if (!/(^|\s)console=ttyS0(,|\s|$)/.test(append)) {
    problems.push(
      'the boot loader\'s kernel arguments lack console=ttyS0 (bootloader --append="console=ttyS0,115200n8")',
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
