import { existsSync, readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { kvmStatus, type KvmStatus } from './accelerator.js';
import { CommandError } from './command-error.js';
import type { Host } from './host.js';
import { libvirtUri } from './libvirt.js';
import {
  applianceKernelPackages,
  findProgram,
  missingRequirements,
  programsOf,
  REQUIREMENTS,
  type PackageManager,
  type Requirement,
} from './programs.js';
import type { Reporter } from '../common/reporter.js';

export const KVM_UDEV_RULE_PATH = '/etc/udev/rules.d/65-kvm.rules';
export const KVM_UDEV_RULE = 'KERNEL=="kvm", GROUP="kvm", MODE="0660"';
const LIBVIRT_WAIT_MS = 30_000;

/** The runner cannot be made ready; the message says how to fix it. */
export class HostSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostSetupError';
  }
}

export interface HostSetupReport {
  /** Packages installed by this run. */
  installed: string[];
  libvirtStarted: boolean;
  kvm: KvmStatus;
  /** /dev/kvm was root-only and was opened to the kvm group. */
  kvmFixed: boolean;
}

/** apt-get on Debian and Ubuntu, dnf on Fedora and RHEL-like systems: from os-release, else whichever is installed. */
export function packageManager(osRelease = readOsRelease()): PackageManager | undefined {
  const family = `${osRelease.ID ?? ''} ${osRelease.ID_LIKE ?? ''}`.toLowerCase().split(/\s+/);
  if (family.some((id) => ['debian', 'ubuntu'].includes(id)) && findProgram('apt-get')) return 'apt-get';
  if (family.some((id) => ['fedora', 'rhel', 'centos'].includes(id)) && findProgram('dnf')) return 'dnf';
  if (findProgram('apt-get')) return 'apt-get';
  if (findProgram('dnf')) return 'dnf';
  return undefined;
}

function readOsRelease(): Record<string, string> {
  let text = '';
  try {
    text = readFileSync('/etc/os-release', 'utf8');
  } catch {
    return {};
  }
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match) fields[match[1]] = match[2].replace(/^(["'])(.*)\1$/, '$2');
  }
  return fields;
}

async function installMissing(host: Host, reporter: Reporter, extra: readonly Requirement[]): Promise<string[]> {
  const missing = missingRequirements([...REQUIREMENTS, ...extra]);
  const manager = packageManager();
  const kernel = manager ? applianceKernelPackages(manager, readOsRelease().ID ?? '') : [];
  if (missing.length === 0 && kernel.length === 0) {
    reporter.info('All the programs a build needs are installed.');
    return [];
  }
  if (!manager) {
    throw new HostSetupError(
      `Missing programs: ${programsOf(missing)}, and this runner has neither apt-get nor dnf to install them. ` +
        'Fix the runner: install QEMU, libvirt, virt-install, libguestfs (guestfish, with a kernel in /boot) and rsync in its image, then build without install-dependencies.',
    );
  }
  const packages = [...new Set([...missing.flatMap((requirement) => requirement.packages[manager]), ...kernel])];
  const what = [
    ...(missing.length ? [`programs ${programsOf(missing)}`] : []),
    ...(kernel.length ? ['a kernel in /boot for the libguestfs appliance'] : []),
  ];
  reporter.info(`Missing ${what.join(' and ')}; installing ${packages.join(' ')} with ${manager}.`);
  const echo = { onLine: (line: string) => reporter.output(line) };
  try {
    if (manager === 'apt-get') {
      // Another apt (unattended-upgrades on a fresh runner) may hold the lock for a while.
      const lock = ['-o', 'DPkg::Lock::Timeout=300'];
      await host.run(['apt-get', ...lock, '-q', 'update'], { root: true, ...echo });
      await host.run(
        ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...lock, '-q', '-y', 'install', ...packages],
        { root: true, ...echo },
      );
    } else {
      await host.run(['dnf', '-y', 'install', ...packages], { root: true, ...echo });
    }
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new HostSetupError(
      `Installing ${packages.join(' ')} with ${manager} failed: ${detail}\n` +
        `Fix the runner: install them in its image (${manager} install ${packages.join(' ')}) and build without install-dependencies, ` +
        `or let the runner's user run ${manager} through sudo without a password.`,
    );
  }
  const stillMissing = missingRequirements([...REQUIREMENTS, ...extra]);
  if (stillMissing.length) {
    throw new HostSetupError(
      `${manager} installed ${packages.join(' ')}, but ${programsOf(stillMissing)} is still not found. ` +
        `Fix the runner: install the packages that provide ${programsOf(stillMissing)} on this distribution and build without install-dependencies.`,
    );
  }
  reporter.info(`Installed ${packages.join(', ')} (for ${what.join(' and ')}).`);
  return packages;
}

async function libvirtAnswers(host: Host, uri: string): Promise<{ ok: boolean; lastLines: readonly string[] }> {
  const result = await host.run(['virsh', '-c', uri, 'version'], {
    allowFailure: true,
    quiet: true,
    captureStdout: true,
  });
  return { ok: result.exitCode === 0, lastLines: result.lastLines };
}

/**
 * libvirt must answer at the URI the build uses. On a runner without a
 * service manager (a container), nothing started libvirtd when its package
 * was installed: start it and virtlogd here, as daemons.
 */
async function ensureLibvirt(host: Host, reporter: Reporter): Promise<boolean> {
  const uri = libvirtUri(host);
  const first = await libvirtAnswers(host, uri);
  if (first.ok) {
    reporter.info(`libvirt answers at ${uri}.`);
    return false;
  }
  const systemd = existsSync('/run/systemd/system');
  const daemon = ['libvirtd', 'virtqemud'].find((name) => findProgram(name));
  if (uri !== 'qemu:///system' || systemd || !daemon) {
    const how = systemd
      ? 'start it with: sudo systemctl enable --now libvirtd (or virtqemud.socket on modular libvirt)'
      : uri === 'qemu:///system'
        ? 'install libvirt-daemon-system (Debian/Ubuntu) or libvirt-daemon-kvm (Fedora/RHEL) and start libvirtd'
        : 'make sure libvirt-daemon (session mode) is installed and that this user may run it';
    throw new HostSetupError(
      `libvirt does not answer at ${uri}: ${first.lastLines.join(' / ') || 'no reply'}. Fix the runner: ${how}.`,
    );
  }
  reporter.info(`libvirt does not answer at ${uri} and no service manager runs here: starting virtlogd and ${daemon}.`);
  if (findProgram('virtlogd')) await host.run(['virtlogd', '-d'], { root: true, allowFailure: true });
  await host.run([daemon, '-d'], { root: true });
  const deadline = Date.now() + LIBVIRT_WAIT_MS;
  for (;;) {
    const attempt = await libvirtAnswers(host, uri);
    if (attempt.ok) break;
    if (Date.now() > deadline) {
      throw new HostSetupError(
        `${daemon} was started, but libvirt still does not answer at ${uri} after ${LIBVIRT_WAIT_MS / 1000} s: ${attempt.lastLines.join(' / ')}. ` +
          `Fix the runner: run '${daemon} -v' by hand to see why it does not start.`,
      );
    }
    await sleep(500);
  }
  reporter.info(`libvirt answers at ${uri}.`);
  return true;
}

/**
 * A /dev/kvm that only root may open (mode 600, no udev rule for it) is opened
 * to the kvm group as distributions do: a udev rule for the next boot, and the
 * same owner and mode applied at once.
 */
async function ensureKvm(
  host: Host,
  reporter: Reporter,
  devicePath = '/dev/kvm',
): Promise<{ status: KvmStatus; fixed: boolean }> {
  let status = kvmStatus(host.isRoot, devicePath);
  let fixed = false;
  let mode: number | undefined;
  try {
    mode = statSync(devicePath).mode;
  } catch {
    mode = undefined;
  }
  if (!status.usable && mode !== undefined && (mode & 0o066) === 0) {
    reporter.info(
      `${devicePath} is mode ${(mode & 0o777).toString(8)} (root only): opening it to the kvm group as distributions do.`,
    );
    try {
      await host.run(['tee', KVM_UDEV_RULE_PATH], { root: true, input: `${KVM_UDEV_RULE}\n` });
      const group = await host.run(['getent', 'group', 'kvm'], {
        allowFailure: true,
        quiet: true,
        captureStdout: true,
      });
      if (group.exitCode !== 0) await host.run(['groupadd', '--system', 'kvm'], { root: true });
      await host.run(['chgrp', 'kvm', devicePath], { root: true });
      await host.run(['chmod', '660', devicePath], { root: true });
    } catch (error) {
      throw new HostSetupError(
        `${devicePath} is root-only and could not be opened to the kvm group: ${error instanceof CommandError ? error.message : String(error)}\n` +
          `Fix the runner: echo '${KVM_UDEV_RULE}' | sudo tee ${KVM_UDEV_RULE_PATH} && sudo udevadm control --reload-rules && sudo udevadm trigger --name-match=kvm`,
      );
    }
    fixed = true;
    reporter.notice(
      `${devicePath} was root-only (mode ${(mode & 0o777).toString(8)}); it is now group kvm, mode 660, and ${KVM_UDEV_RULE_PATH} keeps it so.`,
    );
    status = kvmStatus(host.isRoot, devicePath);
  }
  reporter.info(
    status.usable ? 'KVM is usable: installs run at native speed.' : `KVM is not usable: ${status.reason}.`,
  );
  return { status, fixed };
}

/**
 * Make this runner able to build: packages (every build's, and `extra`: what this
 * build alone needs, as its provisioning's SSH client and Ansible), a running
 * libvirt, a usable /dev/kvm where there is one.
 */
export async function prepareHost(
  host: Host,
  reporter: Reporter,
  extra: readonly Requirement[] = [],
): Promise<HostSetupReport> {
  const installed = await installMissing(host, reporter, extra);
  const libvirtStarted = await ensureLibvirt(host, reporter);
  const kvm = await ensureKvm(host, reporter);
  return { installed, libvirtStarted, kvm: kvm.status, kvmFixed: kvm.fixed };
}
