/**
 * The shipped answer files: each is valid for its installer's format (preseed
 * through debconf-set-selections, Kickstart through a structural check,
 * AutoYaST through xmllint, autoinstall through a YAML parser), and each
 * makes the image image-factory expects: the distribution's cloud image
 * layout (GPT, a BIOS boot partition, an EFI system partition, ext4 on /),
 * no swap, root locked, the serial console in the installed boot loader, the
 * SSH server, the guest agent and cloud-init, and an installer that powers
 * off. Each validator is also shown to fail on a broken copy.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type KickstartArch,
  checkKickstart,
  expandPreIncludes,
  kickstartPackages,
  SERIAL_CONSOLE,
} from '../support/kickstart-check.js';

const DATA_DIR = join(process.cwd(), 'data');
const CONF = join(DATA_DIR, 'image-factory.conf');
const DUMP_CONFIG = join(process.cwd(), 'test', 'support', 'dump-config.py');

type Kind = 'preseed' | 'kickstart' | 'yast' | 'autoinstall';
const KINDS: Kind[] = ['preseed', 'kickstart', 'yast', 'autoinstall'];

const scratch = mkdtempSync(join(tmpdir(), 'answer-files-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A copy of a shipped file in the scratch folder, changed by `edit`, which must change it. */
function brokenCopy(file: string, edit: (text: string) => string): string {
  const text = readFileSync(file, 'utf8');
  const changed = edit(text);
  assert.notEqual(changed, text, `the edit of ${basename(file)} changed nothing`);
  const copy = join(scratch, `broken-${Math.random().toString(36).slice(2)}-${basename(file)}`);
  writeFileSync(copy, changed);
  return copy;
}

/** The answer files the shipped images use, by kind, from Python's reading of the conf. */
function answerFiles(): Record<Kind, string[]> {
  const output = execFileSync('python3', [DUMP_CONFIG, DATA_DIR, CONF], { encoding: 'utf8' });
  const sections = (JSON.parse(output) as { sections: Record<string, Record<string, string>> }).sections;
  const files: Record<Kind, string[]> = { preseed: [], kickstart: [], yast: [], autoinstall: [] };
  for (const items of Object.values(sections)) {
    for (const kind of KINDS)
      if (items[kind] !== undefined && !files[kind].includes(items[kind])) files[kind].push(items[kind]);
  }
  return files;
}

const FILES = answerFiles();

/** The guest architectures every shipped image builds for. */
const ARCHES: KickstartArch[] = ['x86_64', 'aarch64'];

/** The boot loader and partitions of the Kickstart files before they varied by architecture. */
const X86_64_KICKSTART_LINES = [
  'bootloader --timeout=1 --append="console=tty0 console=ttyS0,115200n8"',
  'part biosboot --fstype=biosboot --size=1',
  'part /boot/efi --fstype=efi --size=200',
  'part / --fstype=ext4 --size=1024 --grow',
];

/** Packages every image gets. */
const REQUIRED_PACKAGES = ['qemu-guest-agent', 'cloud-init'];

// ---------------------------------------------------------------- preseed

/** The answers of a preseed file: question → {owner, type, value}, continuation lines joined. */
function preseedAnswers(text: string): Map<string, { owner: string; type: string; value: string }> {
  const answers = new Map<string, { owner: string; type: string; value: string }>();
  const joined = text.replace(/\\\n/g, '');
  for (const line of joined.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    const match = /^\s*(\S+)\s+(\S+)\s+(\S+)\s?(.*)$/.exec(line);
    if (match) answers.set(match[2], { owner: match[1], type: match[3], value: match[4].trim() });
  }
  return answers;
}

/** The partitions of a partman expert recipe: `name :: part . part . ...`. */
function recipePartitions(recipe: string): string[] {
  const body = recipe.replace(/^\s*\S+\s*::/, '');
  return body
    .split(/\s\.(?:\s|$)/)
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/**
 * The expert recipe partman uses under one firmware: the answer file's, or
 * the one its partman/early_command sets with debconf-set (run with a stand-in
 * for debconf-set, and /sys/firmware/efi present or not).
 */
function recipeUnder(firmware: 'bios' | 'uefi', answer?: string, early?: string): string | undefined {
  if (!early || !/debconf-set\s+partman-auto\/expert_recipe/.test(early)) return answer;
  const efi = firmware === 'uefi' ? scratch : join(scratch, 'no-such-folder');
  const script = `debconf_set() { [ "$1" = partman-auto/expert_recipe ] && printf '%s' "$2"; }\n${early
    .replace(/\/sys\/firmware\/efi/g, efi)
    .replace(/debconf-set /g, 'debconf_set ')}`;
  const run = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  return run.status === 0 && run.stdout.trim() ? run.stdout : undefined;
}

/** What is wrong with a recipe's partitions: the layout is BIOS boot, an EFI system partition, ext4 on /. */
function recipeProblems(partitions: string[]): string[] {
  const problems: string[] = [];
  if (partitions.length !== 3)
    problems.push(`the recipe makes ${partitions.length} partitions; the layout has 3 (BIOS boot, ESP, /)`);
  if (partitions.some((partition) => /linux-swap|method\{\s*swap\s*\}/.test(partition)))
    problems.push('the recipe makes a swap partition');
  const [bios, esp, root] = partitions;
  if (bios !== undefined && !/method\{\s*biosgrub\s*\}/.test(bios))
    problems.push(`the first partition is not a BIOS boot partition: ${bios}`);
  if (
    esp !== undefined &&
    !/method\{\s*efi\s*\}/.test(esp) &&
    !(/filesystem\{\s*fat32\s*\}/.test(esp) && /mountpoint\{\s*\/boot\/efi\s*\}/.test(esp))
  )
    problems.push(`the second partition is not an EFI system partition: ${esp}`);
  if (root !== undefined && (!/filesystem\{\s*ext4\s*\}/.test(root) || !/mountpoint\{\s*\/\s*\}/.test(root)))
    problems.push(`the third partition is not ext4 on /: ${root}`);
  return problems;
}

function checkPreseed(file: string): string[] {
  const problems: string[] = [];
  const run = spawnSync('debconf-set-selections', ['--checkonly', file], { encoding: 'utf8' });
  if (run.error) return [`cannot run debconf-set-selections (apt-get install debconf): ${run.error.message}`];
  if (run.status !== 0 || run.stderr.trim() !== '')
    problems.push(`debconf-set-selections --checkonly: exit ${run.status}: ${run.stderr.trim()}`);

  const answers = preseedAnswers(readFileSync(file, 'utf8'));
  const value = (question: string): string | undefined => answers.get(question)?.value;
  if (value('debian-installer/exit/poweroff') !== 'true')
    problems.push('debian-installer/exit/poweroff is not true: the installer would reboot');
  if (answers.get('finish-install/reboot_in_progress')?.type !== 'note')
    problems.push('finish-install/reboot_in_progress is not a note: the installer would wait at its last message');
  if (value('partman-basicfilesystems/no_swap') !== 'false')
    problems.push('partman-basicfilesystems/no_swap is not false: the partitioner would ask for swap');
  if (value('partman-auto/method') !== 'regular')
    problems.push('partman-auto/method is not regular (lvm and crypto make more than one partition)');
  if (value('partman-partitioning/default_label') !== 'gpt')
    problems.push('partman-partitioning/default_label is not gpt: the cloud layout is GPT');
  for (const firmware of ['bios', 'uefi'] as const) {
    const recipe = recipeUnder(firmware, value('partman-auto/expert_recipe'), value('partman/early_command'));
    if (recipe === undefined) {
      problems.push(
        'no partman-auto/expert_recipe (nor one partman/early_command sets): a predefined recipe adds swap',
      );
      break;
    }
    problems.push(...recipeProblems(recipePartitions(recipe)).map((problem) => `under ${firmware}: ${problem}`));
  }
  const rootLogin = value('passwd/root-login');
  const crypted = value('passwd/root-password-crypted');
  if (value('passwd/root-password') !== undefined) problems.push('a plain-text root password in the answer file');
  if (rootLogin !== 'false' && !(crypted !== undefined && /^[!*]/.test(crypted))) {
    problems.push("root gets a usable password: set passwd/root-login false or passwd/root-password-crypted '!'");
  }
  const include = (value('pkgsel/include') ?? '').split(/[\s,]+/);
  for (const wanted of ['openssh-server', ...REQUIRED_PACKAGES])
    if (!include.includes(wanted)) problems.push(`pkgsel/include lacks ${wanted}`);
  if (!value('grub-installer/bootdev'))
    problems.push('no grub-installer/bootdev: the installer would ask where GRUB goes');
  const late = value('preseed/late_command') ?? '';
  if (!/console=ttyS0,115200/.test(late))
    problems.push(
      "preseed/late_command does not put console=ttyS0,115200 in the installed system's GRUB configuration",
    );
  const syntax = spawnSync('sh', ['-n', '-c', late], { encoding: 'utf8' });
  if (syntax.status !== 0) problems.push(`preseed/late_command is not valid shell: ${syntax.stderr.trim()}`);
  return problems;
}

describe('preseed files', () => {
  it('are the answer files of some images', () => assert.ok(FILES.preseed.length > 0));
  for (const file of FILES.preseed) {
    it(`${basename(file)} passes debconf-set-selections and makes the expected image`, () => {
      assert.deepEqual(checkPreseed(file), []);
    });
  }

  const sample = FILES.preseed[0];
  const cases: Array<[string, (text: string) => string, RegExp]> = [
    ['a line without a value', (t) => `${t}d-i mirror/http/proxy\n`, /debconf-set-selections/],
    ['a misspelt type', (t) => t.replace('d-i time/zone string', 'd-i time/zone strng'), /debconf-set-selections/],
    [
      'a swap partition in the recipe',
      (t) => t.replace('mountpoint{ / } .', 'mountpoint{ / } . 64 512 300% linux-swap method{ swap } format{ } .'),
      /4 partitions|swap partition/,
    ],
    [
      'no EFI system partition under BIOS',
      (t) => t.replace('mountpoint{ /boot/efi }', 'mountpoint{ /srv }'),
      /under bios: the second partition is not an EFI system partition/,
    ],
    ['an MBR partition table', (t) => t.replace('default_label string gpt', 'default_label string msdos'), /not gpt/],
    [
      'rebooting at the end',
      (t) =>
        t.replace(
          'd-i debian-installer/exit/poweroff boolean true',
          'd-i debian-installer/exit/poweroff boolean false',
        ),
      /would reboot/,
    ],
    [
      'a root password',
      (t) => t.replace('d-i passwd/root-password-crypted password !', 'd-i passwd/root-password password secret'),
      /plain-text root password|usable password/,
    ],
    [
      'no serial console for the installed system',
      (t) => t.replace(/console=ttyS0,115200n8/g, 'quiet'),
      /console=ttyS0/,
    ],
    [
      'a late command that is not shell',
      (t) => t.replace('in-target apt-get clean', 'in-target apt-get clean && ('),
      /not valid shell/,
    ],
  ];
  for (const [what, edit, expected] of cases) {
    it(`the check fails on ${what}`, () => {
      const problems = checkPreseed(brokenCopy(sample, edit));
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `expected ${expected} among: ${JSON.stringify(problems)}`,
      );
    });
  }
});

// ---------------------------------------------------------------- Kickstart

/** The Kickstart file as anaconda reads it on `arch`: its %pre run, its %include files in place. */
function kickstartOn(file: string, arch: KickstartArch): { text: string; problems: string[] } {
  return expandPreIncludes(readFileSync(file, 'utf8'), arch);
}

/** The lines of the commands `names` that anaconda reads on `arch`, %include files in place. */
function commandLines(file: string, arch: KickstartArch, ...names: string[]): string[] {
  const { text } = kickstartOn(file, arch);
  const lines = text.split('\n');
  return checkKickstart(text, arch)
    .commands.filter((command) => names.includes(command.name))
    .map((command) => lines[command.line - 1].trim());
}

function checkKickstartFile(file: string, arch: KickstartArch = 'x86_64'): string[] {
  const expanded = kickstartOn(file, arch);
  const report = checkKickstart(expanded.text, arch);
  const problems = [...expanded.problems, ...report.problems];
  const packages = kickstartPackages(report);
  for (const wanted of ['@core', 'openssh-server', ...REQUIRED_PACKAGES, 'cloud-utils-growpart']) {
    if (!packages.includes(wanted)) problems.push(`%packages lacks ${wanted}`);
  }
  if (!report.commands.some((c) => c.name === 'text' || c.name === 'cmdline'))
    problems.push('no text (or cmdline): anaconda would try its graphical interface');
  if (!report.commands.some((c) => c.name === 'zerombr'))
    problems.push('no zerombr: anaconda would ask before using the disk');
  const clearpart = report.commands.find((c) => c.name === 'clearpart');
  if (!clearpart || !clearpart.args.includes('--all') || !clearpart.args.includes('--initlabel'))
    problems.push('no clearpart --all --initlabel');
  return problems;
}

describe('Kickstart files', () => {
  it('are the answer files of some images', () => assert.ok(FILES.kickstart.length > 0));
  for (const file of FILES.kickstart) {
    for (const arch of ARCHES) {
      it(`${basename(file)} passes the structural check and makes the expected ${arch} image`, () => {
        assert.deepEqual(checkKickstartFile(file, arch), []);
      });
    }
    it(`${basename(file)} gives x86_64 the boot loader and partitions it always had`, () => {
      assert.deepEqual(commandLines(file, 'x86_64', 'bootloader', 'part'), X86_64_KICKSTART_LINES);
    });
    it(`${basename(file)} gives aarch64 no BIOS boot partition and the ttyAMA0 console`, () => {
      assert.deepEqual(
        commandLines(file, 'aarch64', 'bootloader', 'part'),
        X86_64_KICKSTART_LINES.filter((line) => !line.startsWith('part biosboot')).map((line) =>
          line.replace('console=ttyS0,', 'console=ttyAMA0,'),
        ),
      );
    });
  }

  const sample = FILES.kickstart[0];
  const cases: Array<[string, (text: string) => string, RegExp]> = [
    ['an unknown command', (t) => t.replace('\ntext\n', '\ntxet\n'), /unknown Kickstart command 'txet'/],
    [
      'a section without %end',
      (t) => t.replace('cloud-utils-growpart\n%end', 'cloud-utils-growpart'),
      /has no %end|starts inside %packages/,
    ],
    ['a stray %end', (t) => `${t}%end\n`, /%end without a section/],
    ['autopart', (t) => t.replace(/^part \/ .*$/m, 'autopart --type=plain'), /autopart|0 part commands/],
    ['a swap partition', (t) => t.replace(/^(part \/ .*)$/m, '$1\npart swap --size=512'), /swap partition/],
    ['an XFS root', (t) => t.replace('--fstype=ext4', '--fstype=xfs'), /must be --fstype=ext4/],
    ['rebooting at the end', (t) => t.replace(/^poweroff$/m, 'reboot'), /must power off|no 'poweroff'/],
    ['a root password', (t) => t.replace('rootpw --lock', 'rootpw --plaintext secret'), /usable password/],
    ['no serial console', (t) => t.replace(/ console=ttyS0,115200n8/, ''), /console=ttyS0/],
    ['a command given twice', (t) => t.replace(/^poweroff$/m, 'poweroff\npoweroff'), /already given/],
    ['no cloud-init', (t) => t.replace(/^cloud-init$/m, ''), /%packages lacks cloud-init/],
    ['an unterminated quote', (t) => t.replace('115200n8"', '115200n8'), /unterminated/],
    [
      'a %pre that does not write the include',
      (t) => t.replace('cat > /tmp/arch.ks', 'cat > /tmp/other.ks'),
      /no %pre section wrote it/,
    ],
    ['a failing %pre', (t) => t.replace(/\nfi\n%end/, '\nfi\nfalse\n%end'), /%pre fails/],
  ];
  const aarch64Cases: Array<[string, (text: string) => string, RegExp]> = [
    ['a BIOS boot partition', (t) => t.replace("-e '/^part biosboot /d' ", ''), /a partition for 'biosboot'/],
    ['the PC serial console', (t) => t.replace(" -e 's/console=ttyS0,/console=ttyAMA0,/'", ''), /lack console=ttyAMA0/],
  ];
  for (const [what, edit, expected] of aarch64Cases) {
    it(`the aarch64 check fails on ${what}`, () => {
      const problems = checkKickstartFile(brokenCopy(sample, edit), 'aarch64');
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `expected ${expected} among: ${JSON.stringify(problems)}`,
      );
    });
  }
  for (const [what, edit, expected] of cases) {
    it(`the check fails on ${what}`, () => {
      const problems = checkKickstartFile(brokenCopy(sample, edit));
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `expected ${expected} among: ${JSON.stringify(problems)}`,
      );
    });
  }
});

// ---------------------------------------------------------------- AutoYaST

/** An XPath 1.0 expression's string value; elements match by local name, whatever the profile's namespace. */
function xpath(file: string, expression: string): string {
  return execFileSync('xmllint', ['--xpath', expression, file], { encoding: 'utf8' }).trim();
}

/** `a/b/c` as a namespace-blind XPath step list, from anywhere in the document. */
function path(...names: string[]): string {
  return `//${names.map((name) => `*[local-name()='${name}']`).join('/')}`;
}

/** A folder with a `uname` that answers `arch` to -m, to put first in PATH. */
function fakeUname(arch: KickstartArch): string {
  const bin = join(scratch, `uname-${arch}`);
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'uname'), `#!/bin/sh\nif [ "$1" = -m ]; then echo ${arch}; else echo Linux; fi\n`, {
    mode: 0o755,
  });
  return bin;
}

/** Run a shell script with the fake `uname` of `arch`; its exit status and error output. */
function runOn(arch: KickstartArch, script: string): { status: number | null; stderr: string } {
  return spawnSync('sh', ['-c', script], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${fakeUname(arch)}:${process.env.PATH ?? '/usr/bin:/bin'}` },
  });
}

/**
 * The profile YaST goes on with on `arch`: its pre-scripts run (with
 * /tmp/profile in a scratch folder, holding the profile as autoinst.xml),
 * then /tmp/profile/modified.xml if one of them wrote it, else the profile.
 */
function yastProfileOn(file: string, arch: KickstartArch): string {
  const dir = mkdtempSync(join(scratch, `profile-${arch}-`));
  copyFileSync(file, join(dir, 'autoinst.xml'));
  const count = Number(xpath(file, `count(${path('scripts', 'pre-scripts', 'script')})`));
  for (let i = 1; i <= count; i += 1) {
    const source = xpath(file, `string((${path('scripts', 'pre-scripts', 'script')})[${i}]/*[local-name()='source'])`);
    const run = runOn(arch, source.split('/tmp/profile/').join(`${dir}/`));
    assert.equal(run.status, 0, `pre-script ${i} of ${basename(file)} fails on ${arch}: ${run.stderr}`);
  }
  return existsSync(join(dir, 'modified.xml')) ? join(dir, 'modified.xml') : join(dir, 'autoinst.xml');
}

/** The partitions of the cloud layout by architecture: partition_id, file system, mount point ('' for none). */
const YAST_LAYOUTS: Record<KickstartArch, Array<[string, string, string, string]>> = {
  x86_64: [
    ['263', '', '', 'BIOS boot'],
    ['259', 'vfat', '/boot/efi', 'the EFI system partition'],
    ['', 'ext4', '/', 'ext4 on /'],
  ],
  aarch64: [
    ['259', 'vfat', '/boot/efi', 'the EFI system partition'],
    ['', 'ext4', '/', 'ext4 on /'],
  ],
};

function checkAutoyast(file: string, arch: KickstartArch = 'x86_64'): string[] {
  const lint = spawnSync('xmllint', ['--noout', file], { encoding: 'utf8' });
  if (lint.error) return [`cannot run xmllint (apt-get install libxml2-utils): ${lint.error.message}`];
  if (lint.status !== 0) return [`xmllint: not well-formed XML: ${lint.stderr.trim()}`];
  const problems: string[] = [];
  if (xpath(file, 'local-name(/*)') !== 'profile') problems.push('the root element is not <profile>');

  if (xpath(file, `string(${path('partitioning', 'drive', 'disklabel')})`) !== 'gpt')
    problems.push('partitioning/drive/disklabel is not gpt: the cloud layout is GPT');
  const partitions = Number(xpath(file, `count(${path('partitioning', 'drive', 'partitions', 'partition')})`));
  // What each partition must be, in order (the root partition's id is YaST's choice), and numbered 1, 2, ...
  const layout = YAST_LAYOUTS[arch];
  if (partitions !== layout.length)
    problems.push(
      `${partitions} partitions; the ${arch} layout has ${layout.length} (${layout.map((p) => p[3]).join(', ')})`,
    );
  for (let i = 1; i <= partitions; i += 1) {
    const partition = `(${path('partitioning', 'drive', 'partitions', 'partition')})[${i}]`;
    const field = (name: string): string => xpath(file, `string(${partition}/*[local-name()='${name}'])`);
    const filesystem = field('filesystem');
    const mount = field('mount');
    const id = field('partition_id');
    const [wantedId, wantedFs, wantedMount, what] = layout[i - 1] ?? ['?', '?', '?', 'in the layout'];
    if (filesystem === 'swap' || mount === 'swap') problems.push('a swap partition; the image must have none');
    else if ((wantedId !== '' && id !== wantedId) || filesystem !== wantedFs || mount !== wantedMount)
      problems.push(
        `partition ${i} is ${filesystem || 'no filesystem'} on ${mount || 'nothing'} (id ${id || 'none'}), not ${what}`,
      );
    if (field('partition_nr') !== String(i)) problems.push(`partition ${i} has partition_nr ${field('partition_nr')}`);
  }

  const mode = (name: string): string => xpath(file, `string(${path('general', 'mode', name)})`);
  if (mode('confirm') !== 'false')
    problems.push('general/mode/confirm is not false: YaST would wait for a confirmation');
  // Without a second stage, "halt" ends the first one; with it, "final_halt" ends the second.
  const secondStage = mode('second_stage') !== 'false';
  if (secondStage ? mode('final_halt') !== 'true' : mode('halt') !== 'true') {
    problems.push(
      `general/mode/${secondStage ? 'final_halt' : 'halt'} is not true: YaST would reboot instead of powering off`,
    );
  }
  if (!secondStage && mode('final_halt') !== 'true') problems.push('general/mode/final_halt is not true');

  const append = xpath(file, `string(${path('bootloader', 'global', 'append')})`);
  for (const [name, wanted] of Object.entries(SERIAL_CONSOLE).map(([a, n]) => [n, a === arch] as const)) {
    const named = new RegExp(`(^|\\s)console=${name}(,|\\s|$)`).test(append);
    if (wanted && !named) problems.push(`bootloader/global/append lacks console=${name}`);
    if (!wanted && named) problems.push(`bootloader/global/append names console=${name}, which ${arch} does not have`);
  }

  const rootPassword = xpath(
    file,
    `string(${path('users', 'user')}[*[local-name()='username']='root']/*[local-name()='user_password'])`,
  );
  const rootEncrypted = xpath(
    file,
    `string(${path('users', 'user')}[*[local-name()='username']='root']/*[local-name()='encrypted'])`,
  );
  if (!(rootEncrypted === 'true' && /^[!*]/.test(rootPassword)))
    problems.push("root's password is not locked (encrypted true, user_password '!')");

  const packages = xpath(file, `${path('software', 'packages', 'package')}/text()`)
    .split('\n')
    .map((p) => p.trim());
  for (const wanted of ['openssh', ...REQUIRED_PACKAGES])
    if (!packages.includes(wanted)) problems.push(`software/packages lacks ${wanted}`);
  return problems;
}

describe('AutoYaST profiles', () => {
  it('are the answer files of some images', () => assert.ok(FILES.yast.length > 0));
  for (const file of FILES.yast) {
    it(`${basename(file)} is well-formed and makes the expected image`, () => {
      assert.deepEqual(checkAutoyast(file), []);
    });
    for (const arch of ARCHES) {
      it(`${basename(file)} after its pre-scripts makes the expected ${arch} image`, () => {
        assert.deepEqual(checkAutoyast(yastProfileOn(file, arch), arch), []);
      });
    }
    it(`${basename(file)} is left as it is on x86_64`, () => {
      assert.equal(readFileSync(yastProfileOn(file, 'x86_64'), 'utf8'), readFileSync(file, 'utf8'));
    });
  }
  const aarch64Cases: Array<[string, (text: string) => string, RegExp]> = [
    [
      'a pre-script that keeps the BIOS boot partition',
      (t) => t.replace(/-e '\/\^ \*<!-- BIOS boot partition[^\n]*\n\s*/, ''),
      /3 partitions/,
    ],
    ['a pre-script that keeps ttyS0', (t) => t.replace(/\n\s*-e '\/\^ \*<append>[^\n]*/, ''), /lacks console=ttyAMA0/],
    [
      'a pre-script that keeps the numbers',
      (t) => t.replace(/\n\s*-e '\/\^ \*<partition_nr [^\n]*/g, ''),
      /partition_nr/,
    ],
  ];
  for (const [what, edit, expected] of aarch64Cases) {
    it(`the aarch64 check fails on ${what}`, () => {
      const problems = checkAutoyast(yastProfileOn(brokenCopy(FILES.yast[0], edit), 'aarch64'), 'aarch64');
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `expected ${expected} among: ${JSON.stringify(problems)}`,
      );
    });
  }

  const sample = FILES.yast[0];
  const swap = `<partition>
          <create config:type="boolean">true</create>
          <filesystem config:type="symbol">swap</filesystem>
          <mount>swap</mount>
          <size>512M</size>
        </partition>
      </partitions>`;
  const cases: Array<[string, (text: string) => string, RegExp]> = [
    ['an unclosed element', (t) => t.replace('</software>', ''), /not well-formed/],
    ['a swap partition', (t) => t.replace('</partitions>', swap), /4 partitions|swap partition/],
    [
      'an MBR partition table',
      (t) => t.replace('<disklabel>gpt</disklabel>', '<disklabel>msdos</disklabel>'),
      /not gpt/,
    ],
    [
      'a btrfs root',
      (t) =>
        t.replace(
          '<filesystem config:type="symbol">ext4</filesystem>',
          '<filesystem config:type="symbol">btrfs</filesystem>',
        ),
      /not ext4 on \//,
    ],
    [
      'rebooting at the end',
      (t) => t.replace('<halt config:type="boolean">true</halt>', '<halt config:type="boolean">false</halt>'),
      /would reboot/,
    ],
    [
      'asking for confirmation',
      (t) => t.replace('<confirm config:type="boolean">false</confirm>', ''),
      /confirm is not false/,
    ],
    [
      'a root password',
      (t) => t.replace('<user_password>!</user_password>', '<user_password>$6$salt$hash</user_password>'),
      /not locked/,
    ],
    ['no serial console', (t) => t.replace(/ console=ttyS0,115200n8/, ''), /console=ttyS0/],
    ['no cloud-init', (t) => t.replace('<package>cloud-init</package>', ''), /lacks cloud-init/],
  ];
  for (const [what, edit, expected] of cases) {
    it(`the check fails on ${what}`, () => {
      const problems = checkAutoyast(brokenCopy(sample, edit));
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `expected ${expected} among: ${JSON.stringify(problems)}`,
      );
    });
  }
});

// ---------------------------------------------------------------- autoinstall

const YAML_TO_JSON =
  'import json, sys, yaml\nwith open(sys.argv[1], encoding="utf-8") as f:\n    json.dump(yaml.safe_load(f), sys.stdout)\n';

/** A YAML file as data, through Python's PyYAML (the YAML library cloud-init and subiquity use). */
function loadYaml(file: string): { ok: true; data: unknown } | { ok: false; error: string } {
  const run = spawnSync('python3', ['-c', YAML_TO_JSON, file], { encoding: 'utf8' });
  if (run.status !== 0) return { ok: false, error: run.stderr.trim() };
  return { ok: true, data: JSON.parse(run.stdout) as unknown };
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const YAML_SECTION =
  'import sys, yaml\nwith open(sys.argv[1], encoding="utf-8") as f:\n    data = yaml.safe_load(f)\nwith open(sys.argv[2], "w", encoding="utf-8") as f:\n    yaml.safe_dump(data["autoinstall"], f)\n';

/**
 * The autoinstall configuration subiquity goes on with on `arch`: the file
 * as /autoinstall.yaml (the whole file, or only its autoinstall: mapping, as
 * older subiquity writes it), in a scratch folder; its early-commands run
 * with the fake `uname`; then that file read again.
 */
function autoinstallOn(file: string, arch: KickstartArch, form: 'whole' | 'section'): { text: string; config: Json } {
  const dir = mkdtempSync(join(scratch, `autoinstall-${arch}-`));
  const target = join(dir, 'autoinstall.yaml');
  if (form === 'whole') copyFileSync(file, target);
  else execFileSync('python3', ['-c', YAML_SECTION, file, target]);
  const loaded = loadYaml(file);
  assert.ok(loaded.ok && isObject(loaded.data) && isObject(loaded.data.autoinstall), `${file} is not autoinstall YAML`);
  const early = loaded.data.autoinstall['early-commands'];
  for (const command of Array.isArray(early) ? early.map(String) : []) {
    const run = runOn(arch, command.split('/autoinstall.yaml').join(target));
    assert.equal(run.status, 0, `an early command of ${basename(file)} fails on ${arch}: ${run.stderr}`);
  }
  const reread = loadYaml(target);
  assert.ok(reread.ok && isObject(reread.data), `/autoinstall.yaml is not YAML after the early commands`);
  const config = isObject(reread.data.autoinstall) ? reread.data.autoinstall : reread.data;
  return { text: readFileSync(target, 'utf8'), config };
}

function checkAutoinstall(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const problems: string[] = [];
  if (text.split('\n')[0] !== '#cloud-config')
    problems.push('the first line is not #cloud-config: cloud-init would not read the file as user-data');
  const loaded = loadYaml(file);
  if (!loaded.ok) return [...problems, `not valid YAML: ${loaded.error}`];
  const root = loaded.data;
  if (!isObject(root) || !isObject(root.autoinstall)) return [...problems, 'no autoinstall: mapping'];
  return [...problems, ...checkAutoinstallConfig(root.autoinstall, 'x86_64')];
}

/** What is wrong with an autoinstall configuration (the autoinstall: mapping) for the image of `arch`. */
function checkAutoinstallConfig(ai: Json, arch: KickstartArch): string[] {
  const problems: string[] = [];
  if (ai.version !== 1) problems.push(`autoinstall.version is ${JSON.stringify(ai.version)}, not 1`);
  if (ai.shutdown !== 'poweroff')
    problems.push(`autoinstall.shutdown is ${JSON.stringify(ai.shutdown)}: the installer must power off`);
  if (!isObject(ai.ssh) || ai.ssh['install-server'] !== true)
    problems.push('autoinstall.ssh.install-server is not true');
  if (!isObject(ai.identity) && !isObject(ai['user-data']))
    problems.push('neither identity nor user-data: subiquity would stop and ask');

  const storage = isObject(ai.storage) ? ai.storage : undefined;
  if (!storage || !Array.isArray(storage.config))
    problems.push('no autoinstall.storage.config: a layout of its own would add partitions');
  else {
    if (!isObject(storage.swap) || storage.swap.size !== 0)
      problems.push('autoinstall.storage.swap.size is not 0: subiquity would make a swap file');
    const actions = storage.config.filter(isObject);
    const partitions = actions.filter((a) => a.type === 'partition');
    const formats = actions.filter((a) => a.type === 'format');
    const mounts = actions.filter((a) => a.type === 'mount');
    const disk = actions.find((a) => a.type === 'disk');
    if (!disk || disk.ptable !== 'gpt') problems.push('the disk action has no ptable: gpt; the cloud layout is GPT');
    const bios = arch === 'x86_64';
    if (partitions.length !== (bios ? 3 : 2))
      problems.push(
        `${partitions.length} partitions; the ${arch} layout has ${bios ? '3 (BIOS boot, ESP, /)' : '2 (ESP, /)'}`,
      );
    if (bios && !partitions.some((p) => p.flag === 'bios_grub'))
      problems.push('no BIOS boot partition (flag: bios_grub)');
    if (!bios && partitions.some((p) => p.flag === 'bios_grub'))
      problems.push(`a BIOS boot partition (flag: bios_grub) on ${arch}, which boots only UEFI`);
    const esp = partitions.find((p) => p.flag === 'boot');
    const espFormat = esp ? formats.find((f) => f.volume === esp.id) : undefined;
    const espMount = espFormat ? mounts.find((m) => m.device === espFormat.id) : undefined;
    if (espFormat?.fstype !== 'fat32' || espMount?.path !== '/boot/efi')
      problems.push('no EFI system partition (flag: boot, fat32 on /boot/efi)');
    if (formats.some((f) => f.fstype === 'swap') || partitions.some((p) => p.flag === 'swap'))
      problems.push('a swap partition; the image must have none');
    const root = mounts.find((m) => m.path === '/');
    const rootFormat = root ? formats.find((f) => f.id === root.device) : undefined;
    if (!rootFormat || rootFormat.fstype !== 'ext4') problems.push('/ is not mounted from an ext4 format action');
    else if (!partitions.some((p) => p.id === rootFormat.volume))
      problems.push("/'s file system is not on the partition");
  }

  const packages = Array.isArray(ai.packages) ? ai.packages : [];
  for (const wanted of REQUIRED_PACKAGES)
    if (!packages.includes(wanted)) problems.push(`autoinstall.packages lacks ${wanted}`);
  const late = Array.isArray(ai['late-commands']) ? ai['late-commands'].map(String) : [];
  const consoleName = SERIAL_CONSOLE[arch];
  if (!late.some((command) => command.includes(`console=${consoleName},115200`)))
    problems.push(`no late-command puts console=${consoleName},115200 in the installed system's GRUB configuration`);
  for (const other of Object.values(SERIAL_CONSOLE).filter((name) => name !== consoleName))
    if (late.some((command) => command.includes(`console=${other},`)))
      problems.push(`a late-command names console=${other}, which the ${arch} machine does not have`);
  if (arch !== 'x86_64' && late.some((command) => /--target=(i386-pc|x86_64-efi)/.test(command)))
    problems.push(`a late-command installs an x86 GRUB on ${arch}`);
  for (const command of late) {
    const syntax = spawnSync('sh', ['-n', '-c', command], { encoding: 'utf8' });
    if (syntax.status !== 0) problems.push(`late-command is not valid shell: ${command}`);
  }
  return problems;
}

describe('autoinstall files', () => {
  it('can be read: python3 has PyYAML', () => {
    const probe = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
    assert.equal(probe.status, 0, `python3 cannot import yaml (apt-get install python3-yaml): ${probe.stderr}`);
  });
  it('are the answer files of some images', () => assert.ok(FILES.autoinstall.length > 0));
  for (const file of FILES.autoinstall) {
    it(`${basename(file)} is valid YAML and makes the expected image`, () => {
      assert.deepEqual(checkAutoinstall(file), []);
    });
    for (const arch of ARCHES) {
      for (const form of ['whole', 'section'] as const) {
        it(`${basename(file)} after its early-commands makes the expected ${arch} image (${form} file)`, () => {
          assert.deepEqual(checkAutoinstallConfig(autoinstallOn(file, arch, form).config, arch), []);
        });
      }
    }
    it(`${basename(file)} is left as it is on x86_64`, () => {
      assert.equal(autoinstallOn(file, 'x86_64', 'whole').text, readFileSync(file, 'utf8'));
    });
    it(`${basename(file)} on aarch64 changes only what differs by architecture`, () => {
      const before = autoinstallOn(file, 'x86_64', 'section').config;
      const after = autoinstallOn(file, 'aarch64', 'section').config;
      const rest = (ai: Json): Json => ({ ...ai, storage: undefined, 'late-commands': undefined });
      assert.deepEqual(rest(after), rest(before));
      assert.equal((after['late-commands'] as unknown[]).length, (before['late-commands'] as unknown[]).length - 1);
    });
  }
  const aarch64Cases: Array<[string, (text: string) => string, RegExp]> = [
    [
      'an early command that keeps the BIOS boot partition',
      (t) => t.replace('!= "bios_grub"', '!= "none"'),
      /BIOS boot partition/,
    ],
    [
      'an early command that keeps ttyS0',
      (t) => t.replace('c.replace("console=ttyS0,", "console=ttyAMA0,")', 'c'),
      /console=ttyAMA0/,
    ],
    ['an early command that keeps the BIOS GRUB', (t) => t.replace('if "--target=i386-pc" not in c', ''), /x86 GRUB/],
    ['an early command that fails', (t) => t.replace('import yaml', 'import yaml\n      raise SystemExit(1)'), /fails/],
  ];
  for (const [what, edit, expected] of aarch64Cases) {
    it(`the aarch64 check fails on ${what}`, () => {
      let problems: string[];
      try {
        problems = checkAutoinstallConfig(
          autoinstallOn(brokenCopy(FILES.autoinstall[0], edit), 'aarch64', 'section').config,
          'aarch64',
        );
      } catch (error) {
        problems = [(error as Error).message];
      }
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `expected ${expected} among: ${JSON.stringify(problems)}`,
      );
    });
  }

  const sample = FILES.autoinstall[0];
  const cases: Array<[string, (text: string) => string, RegExp]> = [
    ['no #cloud-config line', (t) => t.replace('#cloud-config\n', ''), /#cloud-config/],
    ['a tab in the indentation', (t) => t.replace('\n  version: 1', '\n\tversion: 1'), /not valid YAML/],
    ['version 2', (t) => t.replace('version: 1', 'version: 2'), /version is 2/],
    ['rebooting at the end', (t) => t.replace('shutdown: poweroff', 'shutdown: reboot'), /must power off/],
    ['a swap file', (t) => t.replace(/swap:\n( +)size: 0/, 'swap:\n$1size: 1G'), /swap.size is not 0/],
    ['an XFS root', (t) => t.replace('fstype: ext4', 'fstype: xfs'), /not mounted from an ext4/],
    [
      'a second partition',
      (t) =>
        t.replace(
          '      - type: format',
          '      - type: partition\n        id: partition-extra\n        device: disk-system\n        number: 2\n        size: 1G\n      - type: format',
        ),
      /4 partitions/,
    ],
    ['no EFI system partition', (t) => t.replace('path: /boot/efi', 'path: /efi'), /no EFI system partition/],
    ['no serial console', (t) => t.replace(/console=ttyS0,115200n8/g, 'quiet'), /console=ttyS0/],
  ];
  for (const [what, edit, expected] of cases) {
    it(`the check fails on ${what}`, () => {
      const problems = checkAutoinstall(brokenCopy(sample, edit));
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `expected ${expected} among: ${JSON.stringify(problems)}`,
      );
    });
  }
});

describe('data/', () => {
  it('holds no answer file that no image uses', () => {
    const used = new Set(KINDS.flatMap((kind) => FILES[kind]).map((file) => basename(file)));
    const shipped = readdirSync(DATA_DIR).filter((name) => /\.(cfg|xml|ya?ml)$/.test(name));
    assert.deepEqual(
      shipped.filter((name) => !used.has(name)),
      [],
    );
  });

  it('copies are made in a scratch folder, not in data/', () => {
    const copy = join(scratch, 'copy.cfg');
    copyFileSync(FILES.preseed[0], copy);
    assert.deepEqual(checkPreseed(copy), []);
  });
});
