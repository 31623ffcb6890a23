import { basename, join } from 'node:path';
import type { ImageSpec } from '../config/image-spec.js';
import { formatDuration } from '../common/units.js';
import type { VmAccelerator } from '../host/accelerator.js';
import { foldersWithoutSearch, qemuSystemUser } from '../host/qemu-access.js';
import { serveAnswerFile } from '../vm/answer-server.js';
import { ConsoleFollower } from '../vm/console.js';
import type { BuildContext } from '../context/build-context.js';
import type { FetchedInstaller } from './fetch.js';
import { watchInstaller, type InstallPhases } from '../vm/install-watch.js';
import type { Registration } from '../context/undo-list.js';
import { screenshotPath } from '../vm/screenshot.js';
import {
  describeFirmware,
  domainResource,
  escapeOptionValue,
  virtInstallCommand,
  type VmDefinition,
} from '../vm/virt-install.js';
export interface InstallPlan {
  domain: string;
  diskPath: string;
  /** The published console log: a whole copy of the VM's (see vmConsoleLog). */
  consoleLog: string;
  accelerator: VmAccelerator;
  installer: FetchedInstaller;
  /** Kernel arguments that point the installer at its answer file (http delivery). */
  answerArgument?: string;
  /** The answer file to inject, when it is not the configured one (see injectableAnswerFile). */
  injectedAnswerFile?: string;
  /** The build's staging folder (a screenshot's PPM is written there). */
  staging: string;
}

/**
 * Where virtlogd writes the installer's serial console: in the staging
 * folder, since it rotates the file at 2 MiB (`console.log.0`, `.1`, `.2`,
 * the oldest dropped). The build publishes one whole copy as it reads it.
 */
export function vmConsoleLog(staging: string): string {
  return join(staging, 'console.log');
}

/** Where the install step puts what it makes. */
export interface InstallTarget {
  domain: string;
  diskPath: string;
  /** The published console log, in the output folder: it stays when the build fails. */
  consoleLog: string;
  /** The build's staging folder (a copy of an answer file with a plain name goes there). */
  staging: string;
}

/** The install step: the answer file made reachable (injected or served), then the installer run to its end. */
export async function installSystem(
  ctx: BuildContext,
  target: InstallTarget,
  installer: FetchedInstaller,
): Promise<InstallPhases> {
  const injectedAnswerFile = await injectableAnswerFile(ctx, target.staging);
  const server = await serveAnswerFile(ctx);
  try {
    const answerArgument = server ? answerFileArgument(ctx.spec, server.url) : undefined;
    return await runInstaller(ctx, {
      ...target,
      accelerator: ctx.accelerator,
      installer,
      injectedAnswerFile,
      answerArgument,
    });
  } finally {
    await server?.close();
  }
}

/**
 * The injected file's name goes on the kernel command line, which splits at
 * white space: a name that is not plain is injected as a copy with a plain
 * name, made in `folder`.
 */
export async function injectableAnswerFile(ctx: BuildContext, folder: string): Promise<string | undefined> {
  const answer = ctx.spec.answerFile;
  if (!answer || ctx.spec.answerDelivery !== 'inject') return undefined;
  const name = basename(answer.path);
  if (/^[A-Za-z0-9._+-]+$/.test(name)) return answer.path;
  const copy = join(folder, name.replace(/[^A-Za-z0-9._+-]/g, '_'));
  await ctx.host.copyFile(answer.path, copy);
  return copy;
}

/** The kernel argument that tells each installer family where its answer file is. */
export function answerFileArgument(spec: ImageSpec, url: string): string {
  switch (spec.answerFile?.kind) {
    case 'preseed':
      return `preseed/url=${url}`;
    case 'kickstart':
      return `inst.ks=${url} ks=${url}`;
    case 'yast':
      return `autoyast=${url}`;
    case 'autoinstall':
      // Subiquity reads user-data and meta-data from a NoCloud seed URL (a folder).
      return `autoinstall ds=nocloud-net;s=${url.replace(/[^/]*$/, '')}`;
    default:
      return '';
  }
}

/** The installer's VM: it boots the netboot kernel (or installer image) with the answer file's argument. */
export function installerVm(spec: ImageSpec, plan: InstallPlan): VmDefinition {
  const { installer } = plan;
  const location =
    installer.files.image !== undefined
      ? escapeOptionValue(`${installer.dir}/${installer.files.image}`)
      : `${escapeOptionValue(installer.dir)},kernel=${escapeOptionValue(installer.files.linux ?? '')},initrd=${escapeOptionValue(installer.files.initrd ?? '')}`;
  const inject =
    spec.answerFile && spec.answerDelivery === 'inject' ? (plan.injectedAnswerFile ?? spec.answerFile.path) : undefined;
  const answerArgument = inject ? answerFileArgument(spec, `file:///${basename(inject)}`) : (plan.answerArgument ?? '');
  return {
    name: plan.domain,
    accelerator: plan.accelerator,
    memoryMiB: spec.ramMiB,
    disks: [{ path: plan.diskPath, format: 'raw' }],
    consoleLog: vmConsoleLog(plan.staging),
    boot: {
      kind: 'installer',
      location,
      extraArgs: [answerArgument, spec.append].filter((part) => part.trim() !== '').join(' '),
      inject,
    },
    mac: spec.mac,
    vnc: spec.vnc,
  };
}

/**
 * Run the installer to completion: it powers the machine off when done
 * (--noreboot). Past install-timeout, or when it stalls, the domain is
 * destroyed (see watchInstaller). The domain is undefined afterwards whatever
 * happened.
 */
export async function runInstaller(ctx: BuildContext, plan: InstallPlan): Promise<InstallPhases> {
  const { spec, reporter, host } = ctx;
  const command = await virtInstallCommand(host, spec, installerVm(spec, plan));
  // An earlier attempt's console log goes (a symlink there as a link); the new one is created here, empty and
  // not through a symlink ('wx'): the console follower appends to this build's own file.
  await host.remove(plan.consoleLog);
  await host.writeFile(plan.consoleLog, '', 0o644);
  // A screenshot from an earlier build of the same name would tell of another install.
  const screenshot = spec.vnc
    ? { ppm: join(plan.staging, 'screen.ppm'), png: screenshotPath(plan.consoleLog) }
    : undefined;
  if (screenshot) await host.remove(screenshot.png);
  const grants = await grantQemuSearch(ctx, plan.diskPath);
  reporter.info(`the installer's VM boots with ${describeFirmware(spec.firmware)} firmware`);
  const domain = ctx.cleanup.register(domainResource(host, spec, plan.domain));
  const console = new ConsoleFollower(
    vmConsoleLog(plan.staging),
    spec.installerLogs ? (line) => reporter.output(`console: ${line}`) : undefined,
    plan.consoleLog,
  );
  const started = Date.now();
  const vm = { domain: plan.domain, diskPath: plan.diskPath, console, screenshot };
  let phases: InstallPhases;
  try {
    phases = await watchInstaller(ctx, vm, () => host.run(command, { onLine: (line) => reporter.output(line) }));
  } finally {
    if (console.copyError) {
      reporter.warning(
        `${plan.consoleLog} lacks the console from where writing it failed: ${console.copyError.message}`,
      );
    }
  }
  await ctx.cleanup.release(domain);
  for (const grant of grants.reverse()) await ctx.cleanup.release(grant);
  reporter.info(`the installer finished after ${formatDuration(Date.now() - started)}`);
  return phases;
}

/**
 * Under qemu:///system qemu runs as its own user and must pass through every
 * folder above the disk. Where one is private (root's home, a mkdtemp folder),
 * grant that user search permission with an ACL for the install (or boot test) only.
 */
export async function grantQemuSearch(
  ctx: BuildContext,
  diskPath: string,
  during = 'the install',
): Promise<Registration[]> {
  if (!ctx.host.isRoot) return [];
  const user = qemuSystemUser();
  if (!user) return [];
  const grants: Registration[] = [];
  for (const folder of foldersWithoutSearch(diskPath)) {
    const acl = await ctx.host.run(['getfacl', '--omit-header', '--absolute-names', folder], {
      captureStdout: true,
      quiet: true,
      readOnly: true,
    });
    if (new RegExp(`^user:${user}:`, 'm').test(acl.stdout)) continue;
    ctx.reporter.info(`${folder} is private: letting ${user} (qemu) pass through it during ${during}`);
    grants.push(ctx.cleanup.register({ kind: 'acl', path: folder, entry: `u:${user}` }));
    await ctx.host.run(['setfacl', '--modify', `u:${user}:x`, folder], { root: true });
  }
  return grants;
}
