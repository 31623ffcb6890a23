import { copyFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ImageSpec } from '../config/image-spec.js';
import { formatDuration } from '../config/units.js';
import { CommandError } from '../host/command-error.js';
import { AbortedError } from '../host/exec.js';
import { libvirtUri, osinfoFlag } from '../host/libvirt.js';
import { foldersWithoutSearch, qemuSystemUser } from '../host/qemu-access.js';
import { ConsoleTail } from './console-tail.js';
import type { BuildContext } from './context.js';
import type { Registration } from './resources.js';
import type { FetchedInstaller } from './fetch.js';
import { throttled } from './reporter.js';

export class InstallError extends Error {
  constructor(
    message: string,
    readonly consoleLines: string[],
  ) {
    super(consoleLines.length ? `${message}\nLast console lines:\n${consoleLines.map((l) => `  | ${l}`).join('\n')}` : message);
    this.name = 'InstallError';
  }
}

export interface InstallPlan {
  domain: string;
  diskPath: string;
  consoleLog: string;
  accelerator: 'kvm' | 'tcg';
  installer: FetchedInstaller;
  /** Kernel arguments that point the installer at its answer file (http delivery). */
  answerArgument?: string;
  /** The answer file to inject, when it is not the configured one (see injectableAnswerFile). */
  injectedAnswerFile?: string;
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
  if (!ctx.dryRun) await copyFile(answer.path, copy);
  return copy;
}

/**
 * virt-install splits its option strings with shlex on commas: a value with a
 * comma, quote, backslash or white space is quoted the way shlex reads it.
 */
export function escapeOptionValue(value: string): string {
  if (!/[,'"\\\s]/.test(value)) return value;
  return `'${value.replace(/'/g, `'"'"'`)}'`;
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

export async function virtInstallCommand(ctx: BuildContext, plan: InstallPlan): Promise<string[]> {
  const { spec } = ctx;
  const uri = libvirtUri(ctx.host);
  let network = 'user,model=virtio';
  if (spec.mac) network += `,mac=${spec.mac}`;
  let graphics = 'none';
  if (spec.vnc) {
    graphics = `vnc,port=${spec.vnc.port}`;
    if (spec.vnc.listen) graphics += `,listen=${spec.vnc.listen}`;
  }
  const { installer } = plan;
  const location =
    installer.files.image !== undefined
      ? escapeOptionValue(`${installer.dir}/${installer.files.image}`)
      : `${escapeOptionValue(installer.dir)},kernel=${escapeOptionValue(installer.files.linux ?? '')},initrd=${escapeOptionValue(installer.files.initrd ?? '')}`;

  let answerArgument = plan.answerArgument ?? '';
  const inject = spec.answerFile && spec.answerDelivery === 'inject';
  const injected = plan.injectedAnswerFile ?? spec.answerFile?.path ?? '';
  if (inject) answerArgument = answerFileArgument(spec, `file:///${basename(injected)}`);
  const extraArgs = [answerArgument, spec.append].filter((part) => part.trim() !== '').join(' ');

  const command = [
    'virt-install',
    '--connect',
    uri,
    '--virt-type',
    plan.accelerator === 'kvm' ? 'kvm' : 'qemu',
    await osinfoFlag(ctx.host),
    spec.osinfo,
    '--noreboot',
    '--wait',
    '-1',
    '--name',
    plan.domain,
    '--vcpus',
    String(spec.cores),
    '--memory',
    String(spec.ramMiB),
    ...(spec.cpu ? ['--cpu', spec.cpu] : []),
    '--disk',
    `path=${escapeOptionValue(plan.diskPath)},bus=virtio,format=raw`,
    '--network',
    network,
    '--graphics',
    graphics,
    '--console',
    `pty,target_type=serial,log.file=${escapeOptionValue(plan.consoleLog)}`,
    '--noautoconsole',
    '--location',
    location,
  ];
  if (extraArgs) command.push('--extra-args', extraArgs);
  if (inject) command.push('--initrd-inject', injected);
  return command;
}

/**
 * Run the installer to completion: it powers the machine off when done
 * (--noreboot). Past install-timeout the domain is destroyed. The domain is
 * undefined afterwards whatever happened.
 */
export async function runInstaller(ctx: BuildContext, plan: InstallPlan): Promise<void> {
  const { spec, reporter } = ctx;
  const command = await virtInstallCommand(ctx, plan);
  if (ctx.dryRun) {
    await ctx.host.run(command);
    return;
  }
  const uri = libvirtUri(ctx.host);
  await rm(plan.consoleLog, { force: true });
  const grants = await grantQemuSearch(ctx, plan.diskPath);
  const domain = ctx.cleanup.register({ kind: 'domain', uri, name: plan.domain });

  const tail = new ConsoleTail(plan.consoleLog, spec.installerLogs ? (line) => reporter.output(`console: ${line}`) : undefined);
  tail.start();
  const started = Date.now();
  const progress = throttled(60_000, (message) => reporter.progress('install', message));
  const ticker = setInterval(() => {
    const latest = tail.latest();
    progress(`installer running for ${formatDuration(Date.now() - started)}${latest ? `; console: ${latest.slice(0, 160)}` : ''}`);
  }, 5_000);
  ticker.unref();

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reporter.warning(`the installer did not finish within ${formatDuration(spec.installTimeoutMs)} (install-timeout): stopping the VM`);
    void ctx.host.uninterruptible().run(['virsh', '-c', uri, 'destroy', plan.domain], { allowFailure: true });
  }, spec.installTimeoutMs);
  timer.unref();

  try {
    await ctx.host.run(command, { onLine: (line) => reporter.output(line) });
    if (timedOut) throw new Error('timed out');
  } catch (error) {
    await tail.stop();
    if (error instanceof AbortedError) throw error;
    if (timedOut) {
      throw new InstallError(`the installer did not finish within ${formatDuration(spec.installTimeoutMs)} (install-timeout); the VM was stopped`, tail.lastLines());
    }
    const detail = error instanceof CommandError ? error.message : String(error);
    throw new InstallError(`virt-install failed: ${detail}`, tail.lastLines());
  } finally {
    clearTimeout(timer);
    clearInterval(ticker);
    await tail.stop();
  }
  await ctx.cleanup.release(domain);
  for (const grant of grants.reverse()) await ctx.cleanup.release(grant);
  reporter.info(`the installer finished after ${formatDuration(Date.now() - started)}`);
}

/**
 * Under qemu:///system qemu runs as its own user and must pass through every
 * folder above the disk. Where one is private (root's home, a mkdtemp folder),
 * grant that user search permission with an ACL for the install (or boot test) only.
 */
export async function grantQemuSearch(ctx: BuildContext, diskPath: string, during = 'the install'): Promise<Registration[]> {
  if (!ctx.host.isRoot) return [];
  const user = qemuSystemUser();
  if (!user) return [];
  const grants: Registration[] = [];
  for (const folder of foldersWithoutSearch(diskPath)) {
    const acl = await ctx.host.run(['getfacl', '--omit-header', '--absolute-names', folder], { captureStdout: true, quiet: true, readOnly: true });
    if (new RegExp(`^user:${user}:`, 'm').test(acl.stdout)) continue;
    ctx.reporter.info(`${folder} is private: letting ${user} (qemu) pass through it during ${during}`);
    grants.push(ctx.cleanup.register({ kind: 'acl', path: folder, entry: `u:${user}` }));
    await ctx.host.run(['setfacl', '--modify', `u:${user}:x`, folder], { root: true });
  }
  return grants;
}
