import type { Firmware, ImageSpec } from '../config/image-spec.js';
import type { VmAccelerator } from '../host/accelerator.js';
import { hostArch, type Arch } from '../common/arch.js';
import type { Host } from '../host/host.js';
import { libvirtUri, nvramPath, osinfoFlag } from '../host/libvirt.js';
import type { Resource } from '../context/undo-list.js';

/**
 * A VM step (install, boot test) that failed: the message says why, and the
 * console's last screen (rendered by a terminal emulator) shows what a person
 * at the console would have seen.
 */
export class VmStepError extends Error {
  constructor(
    message: string,
    readonly screen: readonly string[],
  ) {
    super(screen.length ? `${message}\n${SCREEN_HEADING}\n${quoteScreen(screen)}` : message);
    this.name = 'VmStepError';
  }
}

export const SCREEN_HEADING = "The console's last screen:";

/** The screen's lines as a message quotes them: indented behind a bar, so that a blank row still shows. */
export function quoteScreen(screen: readonly string[]): string {
  return screen.map((line) => `  | ${line}`.trimEnd()).join('\n');
}

/**
 * virt-install splits its option strings with shlex on commas: a value with a
 * comma, quote, backslash or white space is quoted the way shlex reads it.
 */
export function escapeOptionValue(value: string): string {
  if (!/[,'"\\\s]/.test(value)) return value;
  return `'${value.replace(/'/g, `'"'"'`)}'`;
}

export interface VmDisk {
  path: string;
  format: 'raw' | 'qcow2';
  readonly?: boolean;
}

/** One VM of the build: the installer's, or the boot test's throw-away one. */
export interface VmDefinition {
  name: string;
  accelerator: VmAccelerator;
  memoryMiB: number;
  disks: VmDisk[];
  consoleLog: string;
  /** How it boots: the installer from its kernel (--location), or the disk as it is (--import, gone when it stops). */
  boot: { kind: 'installer'; location: string; extraArgs: string; inject?: string } | { kind: 'import' };
  mac?: string;
  vnc?: ImageSpec['vnc'];
  /** A port on 127.0.0.1 that qemu's user networking forwards to the guest's SSH (port 22). */
  sshForward?: number;
}

/**
 * The VM's network. libvirt's user networking, or, to reach the guest's SSH,
 * qemu's own: libvirt 9.0 (Debian 12) has no port forwarding for user
 * networking (its passt backend is refused there), while qemu's
 * `hostfwd=tcp:127.0.0.1:PORT-:22` forwards one loopback port to the guest,
 * works on qemu:///session and qemu:///system alike, and ends with the qemu
 * process. The guest still reaches out through the same NAT (10.0.2.2).
 */
export function networkOptions(vm: Pick<VmDefinition, 'mac' | 'sshForward'>): string[] {
  const mac = vm.mac ? `,mac=${vm.mac}` : '';
  if (vm.sshForward === undefined) return ['--network', `user,model=virtio${mac}`];
  return [
    '--network',
    'none',
    // One word each: argparse would read a value of its own that starts with '-' as an option.
    `--qemu-commandline=-netdev user,id=ifxnet0,hostfwd=tcp:127.0.0.1:${vm.sshForward}-:22`,
    // Slot 0x1e of the root bus: libvirt, which does not see this device, gives slots from 1 up to its own.
    `--qemu-commandline=-device virtio-net-pci,netdev=ifxnet0,addr=0x1e${mac}`,
  ];
}

/**
 * virt-install's --boot for the VMs' firmware. bios: none (SeaBIOS is
 * libvirt's default). UEFI: libvirt picks OVMF from the firmware descriptors
 * (/usr/share/qemu/firmware) by the features asked for, and gives the domain
 * its own NVRAM copied from the firmware's template (see nvramPath). The
 * features are always named: without them libvirt takes the first
 * descriptor, which on Debian is the Secure Boot one.
 */
export function firmwareBootOptions(firmware: Firmware): string[] {
  if (firmware === 'bios') return [];
  const secure = firmware === 'uefi-secure' ? 'yes' : 'no';
  return [
    '--boot',
    [
      'uefi',
      'firmware.feature0.name=secure-boot',
      `firmware.feature0.enabled=${secure}`,
      'firmware.feature1.name=enrolled-keys',
      `firmware.feature1.enabled=${secure}`,
    ].join(','),
  ];
}

/** The firmware as the log names it. */
export function describeFirmware(firmware: Firmware): string {
  switch (firmware) {
    case 'bios':
      return 'BIOS (SeaBIOS)';
    case 'uefi':
      return 'UEFI (OVMF, Secure Boot off)';
    case 'uefi-secure':
      return 'UEFI (OVMF, Secure Boot on, Microsoft keys enrolled)';
  }
}

/** The undo of a VM of the build: its domain and, under UEFI, its NVRAM file. */
export function domainResource(host: Host, spec: ImageSpec, name: string): Resource {
  const uri = libvirtUri(host);
  return spec.firmware === 'bios'
    ? { kind: 'domain', uri, name }
    : { kind: 'domain', uri, name, nvram: nvramPath(uri, name) };
}

/** The virt-install command line of a VM: one builder for the install and the boot test. */
export async function virtInstallCommand(host: Host, spec: ImageSpec, vm: VmDefinition): Promise<string[]> {
  const lifecycle = vm.boot.kind === 'installer' ? ['--noreboot', '--wait', '-1'] : ['--import', '--transient'];
  const disks = vm.disks.flatMap((disk) => [
    '--disk',
    `path=${escapeOptionValue(disk.path)},bus=virtio,format=${disk.format}${disk.readonly ? ',readonly=on' : ''}`,
  ]);
  const command = [
    'virt-install',
    '--connect',
    libvirtUri(host),
    '--virt-type',
    vm.accelerator === 'kvm' ? 'kvm' : 'qemu',
    await osinfoFlag(host),
    spec.osinfo,
    ...lifecycle,
    '--name',
    vm.name,
    '--vcpus',
    String(spec.cores),
    '--memory',
    String(vm.memoryMiB),
    ...archVmOptions(spec.arch, vm.accelerator, spec.cpu),
    ...(spec.cpu ? ['--cpu', spec.cpu] : []),
    ...firmwareBootOptions(spec.firmware),
    ...disks,
    ...networkOptions(vm),
    '--graphics',
    vm.vnc ? `vnc,port=${vm.vnc.port}${vm.vnc.listen ? `,listen=${vm.vnc.listen}` : ''}` : 'none',
    '--console',
    `pty,target_type=serial,log.file=${escapeOptionValue(vm.consoleLog)}`,
    '--noautoconsole',
  ];
  if (vm.boot.kind === 'installer') {
    command.push('--location', vm.boot.location);
    if (vm.boot.extraArgs) command.push('--extra-args', vm.boot.extraArgs);
    if (vm.boot.inject) command.push('--initrd-inject', vm.boot.inject);
  }
  return command;
}

/** Whether the domain still runs: a transient domain that stopped is gone. */
export async function domainRunning(host: Host, name: string): Promise<boolean> {
  const state = await host.run(['virsh', '-c', libvirtUri(host), 'domstate', name], {
    allowFailure: true,
    quiet: true,
    captureStdout: true,
  });
  if (state.exitCode !== 0) {
    // Gone; any other failure (libvirtd busy) is asked again at the next check.
    return !/failed to get domain|domain not found|no domain with matching name/i.test(state.lastLines.join('\n'));
  }
  return !/shut off|crashed|shutdown/.test(state.stdout);
}

/**
 * virt-install's options for the guest architecture. An x86_64 guest on an
 * x86_64 host needs none (virt-install's defaults). Otherwise --arch, and for
 * aarch64 the virt machine type and a CPU model: the host's under KVM, a
 * Cortex-A57 under TCG (qemu's aarch64 'virt' machine has no default CPU that
 * boots a distribution kernel), unless `cpu` is set.
 */
export function archVmOptions(arch: Arch, accelerator: VmAccelerator, cpu?: string, host: Arch = hostArch()): string[] {
  if (arch === 'x86_64') return host === 'x86_64' ? [] : ['--arch', 'x86_64'];
  return [
    '--arch',
    'aarch64',
    '--machine',
    'virt',
    ...(cpu ? [] : ['--cpu', accelerator === 'kvm' ? 'host-passthrough' : 'cortex-a57']),
  ];
}
