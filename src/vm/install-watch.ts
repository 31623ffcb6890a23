import { formatDuration } from '../common/units.js';
import { systemClock, type Clock } from '../host/clock.js';
import { CommandError } from '../host/command-error.js';
import { AbortedError } from '../host/exec.js';
import { libvirtUri } from '../host/libvirt.js';
import type { ConsoleFollower } from './console.js';
import type { BuildContext } from '../context/build-context.js';
import { throttled } from '../common/reporter.js';
import { lastTextLine, screenTitle } from './screen.js';
import { saveScreenshot } from './screenshot.js';
import { StallDetector } from './stall.js';
import { VmStepError } from './virt-install.js';

/** How often the console is read and the screen compared, and how often at most the disk is looked at. */
const TICK_MS = 1_000;
const DISK_INTERVAL_MS = 5_000;
/** The progress line: once a minute, and when the installer's dialog changes, at most every 15 s. */
const PROGRESS_INTERVAL_MS = 60_000;
const NEW_TITLE_INTERVAL_MS = 15_000;

/** The install's phases, in seconds, as the install watch saw them (null: the console stayed empty). */
export interface InstallPhases {
  /** From the VM's start to the first byte on its serial console. */
  bootSeconds: number | null;
  /** From the first console byte to the last. */
  runningSeconds: number | null;
  /** From the last console byte to the VM's power-off (virt-install returned). */
  powerOffSeconds: number | null;
}

/** The installing VM as the watch sees it. */
export interface WatchedVm {
  domain: string;
  /** The raw disk the installer writes: its allocated blocks growing is activity. */
  diskPath: string;
  console: ConsoleFollower;
  /** Where a screenshot of the display goes when the VM is stopped (only with a VNC display). */
  screenshot?: { ppm: string; png: string };
}

/**
 * While virt-install waits for the installer: follow its console and screen,
 * report progress at a calm rate, and stop the VM past install-timeout or
 * when it stalls (stall-timeout: screen and disk unchanged). A failure
 * becomes a VmStepError that shows the installer's last screen. Returns the
 * install's phases as the watch's clock saw them.
 */
export async function watchInstaller(
  ctx: BuildContext,
  vm: WatchedVm,
  install: () => Promise<unknown>,
): Promise<InstallPhases> {
  const watch = new InstallWatch(ctx, vm);
  watch.start();
  try {
    await install();
    watch.powerOff();
    // virt-install returns when the domain stops, and a destroyed domain has stopped.
    if (watch.stopped) throw new Error(`stopped at ${watch.stopped}`);
  } catch (error) {
    await watch.finish();
    if (error instanceof AbortedError) throw error;
    throw watch.failure(error);
  } finally {
    await watch.finish();
  }
  return watch.phases();
}

class InstallWatch {
  /** Why the watch stopped the VM, if it did. */
  stopped?: 'install-timeout' | 'stall-timeout';
  private readonly clock: Clock;
  private readonly started: number;
  private readonly stall: StallDetector;
  private readonly progress: (message: string, force?: boolean) => void;
  private stopTicking?: () => void;
  private ticking?: Promise<void>;
  private lastDiskLook = 0;
  /** At least four looks at the disk within stall-timeout. */
  private readonly diskInterval: number;
  private title?: string;
  private titleReported = 0;
  private screenshot?: string;
  /** When the console's first and last bytes were seen, and when the VM powered off (the watch's clock). */
  private consoleBytes = 0;
  private firstOutput?: number;
  private lastOutput?: number;
  private ended?: number;

  constructor(
    private readonly ctx: BuildContext,
    private readonly vm: WatchedVm,
  ) {
    this.clock = ctx.clock ?? systemClock;
    this.started = this.clock.now();
    this.stall = new StallDetector(ctx.spec.stallTimeoutMs, this.started);
    this.diskInterval = Math.min(DISK_INTERVAL_MS, Math.max(TICK_MS, ctx.spec.stallTimeoutMs / 4));
    this.progress = throttled(
      PROGRESS_INTERVAL_MS,
      (message) => ctx.reporter.progress('install', message),
      () => this.clock.now(),
    );
  }

  start(): void {
    // A tick still reading when the next is due: the next is skipped.
    this.stopTicking = this.clock.every(
      TICK_MS,
      () => (this.ticking ??= this.tick().finally(() => (this.ticking = undefined))),
    );
  }

  /** No more ticks; the console read to its end. */
  async finish(): Promise<void> {
    this.stopTicking?.();
    await this.ticking;
    await this.vm.console.stop();
  }

  /** The VM powered off: virt-install returned. */
  powerOff(): void {
    this.ended = this.clock.now();
  }

  /** Boot (start to first console byte), running (first to last byte), power-off (last byte to the end). */
  phases(): InstallPhases {
    const end = this.ended ?? this.clock.now();
    // Bytes read only after the end were written before it, after the last tick saw any.
    if (this.vm.console.bytesRead > this.consoleBytes) this.seeOutput(end);
    const seconds = (from: number | undefined, to: number | undefined): number | null =>
      from === undefined || to === undefined ? null : Math.max(0, to - from) / 1000;
    return {
      bootSeconds: seconds(this.started, this.firstOutput),
      runningSeconds: seconds(this.firstOutput, this.lastOutput),
      powerOffSeconds: seconds(this.lastOutput, end),
    };
  }

  private seeOutput(now: number): void {
    this.consoleBytes = this.vm.console.bytesRead;
    this.firstOutput ??= now;
    this.lastOutput = now;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const { spec, reporter } = this.ctx;
    try {
      await this.vm.console.poll();
      const now = this.clock.now();
      if (this.vm.console.bytesRead > this.consoleBytes) this.seeOutput(now);
      this.stall.seeScreen(this.vm.console.screen.fingerprint(), now);
      if (spec.stallTimeoutMs > 0 && now - this.lastDiskLook >= this.diskInterval) {
        this.lastDiskLook = now;
        this.stall.seeDisk((await this.ctx.host.stat(this.vm.diskPath)).blocks, now);
      }
      if (now - this.started >= spec.installTimeoutMs) await this.stop('install-timeout');
      else if (this.stall.stalled(now)) await this.stop('stall-timeout');
      else this.report(now);
    } catch (error) {
      // A console or disk that cannot be read this second is looked at again the next.
      reporter.output(`watching the installer: ${(error as Error).message}`);
    }
  }

  /** The progress line: how long, and the dialog's title or the console's last line. */
  private report(now: number): void {
    const lines = this.vm.console.screen.lines();
    const title = screenTitle(lines);
    const shown = title ? `; screen: ${title}` : lastTextLine(lines) ? `; console: ${lastTextLine(lines)}` : '';
    const newTitle = title !== undefined && title !== this.title && now - this.titleReported >= NEW_TITLE_INTERVAL_MS;
    if (newTitle) {
      this.title = title;
      this.titleReported = now;
    }
    this.progress(`installer running for ${formatDuration(now - this.started)}${shown.slice(0, 180)}`, newTitle);
  }

  private async stop(reason: 'install-timeout' | 'stall-timeout'): Promise<void> {
    const { spec, reporter, host } = this.ctx;
    this.stopped = reason;
    reporter.warning(
      reason === 'install-timeout'
        ? `the installer did not finish within ${formatDuration(spec.installTimeoutMs)} (install-timeout): stopping the VM`
        : `the installer's screen and disk have not changed for ${formatDuration(spec.stallTimeoutMs)} (stall-timeout): it seems to be waiting for input; stopping the VM`,
    );
    if (this.vm.screenshot) this.screenshot = await saveScreenshot(this.ctx, this.vm.domain, this.vm.screenshot);
    await host.uninterruptible().run(['virsh', '-c', libvirtUri(host), 'destroy', this.vm.domain], {
      allowFailure: true,
    });
  }

  /** The step's error: why it failed, with the last screen. */
  failure(error: unknown): VmStepError {
    const { spec } = this.ctx;
    const screen = this.vm.console.screen.lines();
    const shot = this.screenshot ? `. A screenshot of its display is in ${this.screenshot}` : '';
    if (this.stopped === 'install-timeout') {
      const limit = formatDuration(spec.installTimeoutMs);
      return new VmStepError(
        `the installer did not finish within ${limit} (install-timeout); the VM was stopped${shot}`,
        screen,
      );
    }
    if (this.stopped === 'stall-timeout') {
      return new VmStepError(
        `the installer seems to be waiting for input: its screen and its disk did not change for ${formatDuration(spec.stallTimeoutMs)} (stall-timeout), so the VM was stopped${shot}`,
        screen,
      );
    }
    const detail = error instanceof CommandError ? error.message : String(error);
    return new VmStepError(`virt-install failed: ${detail}`, screen);
  }
}
