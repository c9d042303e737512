/**
 * The one interface the daemon uses to run a guest, whatever the VMM.
 *
 * Lifecycle, as the lifecycle code drives it:
 *   const plan = driver.buildLaunch(spec)        // pure: argv + API steps, for inspection/tests
 *   const handle = await driver.launch(spec, op) // detached VMM, own session, pidfile written
 *   await driver.isRunning(handle)              // identity check, never "a pid exists"
 *   await driver.stop(handle, { timeoutMs }, op) // graceful (ctrl-alt-del), then SIGTERM/SIGKILL
 *   await driver.adopt(ref)                     // after a daemon restart: re-attach from the pidfile
 *   await driver.stats(handle)                  // CPU% / RSS of the VMM process
 *   await driver.setPaused(handle, true, op)    // freeze / thaw the guest (qemu stop/cont, Firecracker PATCH /vm)
 *   await driver.saveState(handle, files, op)   // a PAUSED guest's memory + device state into the owner's files
 *   await driver.launch({ ...spec, restoreFrom: files }, op) // a new VMM loaded from them, left PAUSED
 *   await driver.sendIdentity(handle, id, op)   // a fork's new hostname/MAC/IP/clock/seed/host key, via the guest agent
 *
 * Who does what: VMMs must open /dev/kvm and /dev/net/tun, which are 0600 root,
 * so the ROOT HELPER spawns them (priv.launch_qemu / priv.launch_firecracker)
 * and the VMM drops to the owner uid itself (qemu `-runas uid:gid`, jailer
 * `--uid/--gid`). The helper rebuilds the argv from validated fields with the
 * same pure builders used here; the daemon never sends an argv. Signals also
 * go through the helper (priv.signal_process / priv.kill_process) even when
 * the VMM already runs as the owner: that keeps ONE path, identity-checked
 * against /proc/PID/cmdline, and works for a Firecracker started without the
 * jailer (which stays root). Reads (/proc/PID/cmdline, stat) need no privilege
 * and are done by the daemon directly.
 *
 * Errors: launch/stop throw Error with a message that says what to do; adopt
 * throws {@link StalePidError} when the pidfile names a process that is not
 * this VM's VMM (never signal it, clean up the pidfile instead).
 */

import type { VmIdentity } from "../rpc/priv/agent.js";

export type VmmKind = "qemu" | "firecracker";

/**
 * One snapshot's files, made empty (the owner's, 0600) by the daemon beneath the state dir and written
 * by the root helper through descriptors. `state`: qemu's migration stream, or Firecracker's snapshot
 * file; `memory`: Firecracker's guest memory file (qemu leaves it empty: memory is in its stream).
 */
export interface SnapshotFiles {
  readonly state: string;
  readonly memory: string;
}

/**
 * What a save produced. `vmmVersion` (the VMM binary's sha256) must match at restore, as must the VMM
 * kind, kernel, machine type, vcpus and memory: record it with the snapshot.
 */
export interface SaveResult {
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly vmmVersion: string;
}
export type Accel = "kvm" | "tcg";

/** Everything needed to start one guest. Paths are absolute, inside banger's state/runtime dirs. */
export interface VmSpec {
  /** 32 lowercase hex chars (validate.vmId). */
  readonly vmId: string;
  readonly name: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  /** bzImage for qemu, uncompressed ELF vmlinux for Firecracker. */
  readonly kernelPath: string;
  readonly initrdPath?: string | undefined;
  /** Kernel command line (guest contract base; drivers append nothing VMM-specific but Firecracker's own). */
  readonly cmdline: string;
  /** /dev/vda: per-VM copy-on-write root (file or /dev/mapper/fc-rootfs-*). */
  readonly rootDisk: string;
  /** /dev/vdb: per-VM work disk. */
  readonly workDisk: string;
  /** Host tap (tap-fc-XXXXXXXX / tap-pool-N), already created and attached to the bridge. */
  readonly tap: string;
  /** Guest MAC, lowercase aa:bb:cc:dd:ee:ff. */
  readonly mac: string;
  /**
   * Firecracker API socket or qemu QMP socket, and the pidfile: where the root helper puts them, in
   * its own root-owned directory of the VM (paths.helperVmFiles). Shown, never sent: the helper picks
   * these from the VM id, and only it connects to the socket.
   */
  readonly controlSocket: string;
  readonly pidFile: string;
  /** Guest serial console output. */
  readonly consoleLog: string;
  /** The VMM's own stdout/stderr and log. */
  readonly vmmLog: string;
  /** Firecracker metrics file (vmFiles.metrics); qemu ignores it. */
  readonly metricsPath?: string | undefined;
  readonly accel: Accel;
  /** Optional vsock (Firecracker hybrid vsock UDS path + guest CID >= 3). */
  readonly vsock?: { readonly cid: number; readonly udsPath: string } | undefined;
  /**
   * Load this saved state instead of booting (same kind, VMM version, kernel, vcpus, memory and device
   * list as the VM it was saved from; new disks, tap and MAC allowed). launch() then returns with the
   * guest loaded and PAUSED: resume it with setPaused(handle, false), then give it its identity.
   */
  readonly restoreFrom?: SnapshotFiles | undefined;
}

/** One Firecracker API call of a boot sequence; qemu plans have none. */
export interface ApiStep {
  /** Stable step name: logger, metrics, machine-config, boot-source, drive:rootfs, ..., InstanceStart. */
  readonly name: string;
  readonly method: "GET" | "PUT" | "PATCH";
  readonly path: string;
  readonly body?: Readonly<Record<string, unknown>>;
}

/** What launching will do, computed without side effects. */
export interface LaunchPlan {
  readonly kind: VmmKind;
  /** The VMM argv the root helper will spawn (argv[0] is the binary). */
  readonly argv: readonly string[];
  /** API calls made after the VMM's socket is up (Firecracker only). */
  readonly apiSteps: readonly ApiStep[];
}

/** Enough to find and identify a running VMM again; persisted in handles.json. */
export interface VmmHandle {
  readonly kind: VmmKind;
  readonly vmId: string;
  readonly pid: number;
  readonly controlSocket: string;
  readonly pidFile: string;
}

/** What adopt() starts from after a daemon restart (no pid yet: it comes from the pidfile). */
export type VmmRef = Omit<VmmHandle, "pid">;

export interface StopOptions {
  /** How long to wait for the guest to power down before SIGTERM, then SIGKILL. */
  readonly timeoutMs: number;
  /** Skip the graceful request: SIGKILL at once. */
  readonly force?: boolean;
}

export interface StopResult {
  /** "graceful": guest shut down by itself; "terminated": SIGTERM; "killed": SIGKILL; "not-running": was already gone. */
  readonly how: "graceful" | "terminated" | "killed" | "not-running";
  readonly elapsedMs: number;
}

export interface VmmStats {
  readonly pid: number;
  /** Average CPU over the VMM's lifetime, percent of one core. */
  readonly cpuPercent: number;
  readonly rssBytes: number;
  readonly uptimeSeconds: number;
}

export interface VmmDriver {
  readonly kind: VmmKind;
  buildLaunch(spec: VmSpec): LaunchPlan;
  launch(spec: VmSpec, opId: string): Promise<VmmHandle>;
  /** Stops the VMM and has the helper remove what it kept for it (release). */
  stop(handle: VmmHandle, options: StopOptions, opId: string): Promise<StopResult>;
  /** Once no VMM of `vmId` runs: the helper removes its run directory (pidfile, sockets) and jail. Idempotent. */
  release(vmId: string, opId: string): Promise<void>;
  /** True only when handle.pid is alive AND its cmdline names this VM's control socket. */
  isRunning(handle: VmmHandle): Promise<boolean>;
  /** Re-attach from the pidfile; throws StalePidError if it names another process, NotRunningError if none. */
  adopt(ref: VmmRef): Promise<VmmHandle>;
  stats(handle: VmmHandle): Promise<VmmStats>;
  /** Freeze (no vCPU runs, memory and devices kept) or thaw the guest. */
  setPaused(handle: VmmHandle, paused: boolean, opId: string): Promise<void>;
  /** Save a PAUSED guest into `files` (refused while it runs); it stays paused. */
  saveState(handle: VmmHandle, files: SnapshotFiles, opId: string): Promise<SaveResult>;
  /**
   * Have the guest agent take `identity` (plus the helper's clock and a fresh random seed), over
   * the agent channel (qemu: virtio-serial port; Firecracker: vsock port 52). Resolves once the
   * agent acknowledged it, with how long that took; throws when it refused a step or never answered
   * (an image built before the agent existed).
   */
  sendIdentity(handle: VmmHandle, identity: VmIdentity, opId: string): Promise<{ ackMs: number }>;
}

/** The pidfile names a live process that is not this VM's VMM (pid reuse): never signal it. */
export class StalePidError extends Error {
  constructor(readonly pidFile: string, readonly pid: number, detail: string) {
    super(`pidfile ${pidFile} names pid ${pid}, which is not this VM's VMM (${detail}); remove the stale pidfile and treat the VM as stopped`);
    this.name = "StalePidError";
  }
}

/** No VMM is running for this VM (pidfile missing, empty, or the pid is gone). */
export class NotRunningError extends Error {
  constructor(readonly pidFile: string, detail: string) {
    super(`no VMM running for ${pidFile}: ${detail}`);
    this.name = "NotRunningError";
  }
}
