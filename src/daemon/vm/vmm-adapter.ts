import { helperVmFiles, vmFiles } from "../../paths/paths.js";
import { BASE_CMDLINE, TCG_KERNEL_ARGS } from "../../image/cmdline.js";
import type { PidExitWatcher } from "../../system/pid-exit-watcher.js";
import { checkVmmIdentity, findVmmPid } from "../../vmm/identity.js";
import type { Accel, VmmDriver, VmmHandle as DriverHandle, VmSpec } from "../../vmm/driver.js";
import type { LaunchSpec, VmmDeps, VmmHandle } from "./deps.js";

/**
 * Adapts a VMM driver (src/vmm) to the lifecycle's VmmDeps: turns the
 * lifecycle's LaunchSpec into the driver's VmSpec (kernel flavour per VMM,
 * guest-contract cmdline, where the helper will keep the VMM's socket and
 * pidfile) and carries the driver's handle through handles.json unchanged so
 * stop/isAlive get it back. `helperDir`: the directory of the helper's socket,
 * next to which it keeps its per-VM directories (paths.helperVmFiles).
 */
export function buildVmSpec(spec: LaunchSpec, kind: VmmDriver["kind"], accel: Accel, helperDir: string): VmSpec {
  const kernelPath = kind === "firecracker" ? spec.image.vmlinuxPath ?? spec.image.kernelPath : spec.image.kernelPath;
  // TCG needs the TSC frequency up front or microvm boots can hang calibrating (see image/cmdline.ts).
  const cmdline = accel === "tcg" ? `${BASE_CMDLINE} ${TCG_KERNEL_ARGS}` : BASE_CMDLINE;
  return {
    vmId: spec.vmId,
    name: spec.name,
    vcpus: spec.vcpus,
    memoryMib: spec.memoryMib,
    kernelPath,
    initrdPath: spec.image.initrdPath,
    cmdline,
    rootDisk: spec.rootDiskPath,
    workDisk: spec.workDiskPath,
    tap: spec.lease.tap,
    mac: spec.lease.mac.toLowerCase(),
    controlSocket: controlSocketOf(kind, helperDir, spec.vmId),
    pidFile: helperVmFiles.pidFile(helperDir, spec.vmId),
    consoleLog: spec.consoleLog,
    vmmLog: vmFiles.vmmLog(spec.vmDir),
    metricsPath: kind === "firecracker" ? vmFiles.metrics(spec.vmDir) : undefined,
    accel,
    // Shown only: the daemon asks for the device, the helper puts its socket in its own dir (or the jail).
    vsock: kind === "firecracker" ? { cid: spec.lease.cid, udsPath: helperVmFiles.vsockSocket(helperDir, spec.vmId) } : undefined,
    restoreFrom: spec.restore,
  };
}

function controlSocketOf(kind: VmmDriver["kind"], helperDir: string, vmId: string): string {
  return kind === "firecracker" ? helperVmFiles.apiSocket(helperDir, vmId) : helperVmFiles.qmpSocket(helperDir, vmId);
}

function toDriverHandle(h: VmmHandle, kind: VmmDriver["kind"]): DriverHandle {
  const vmId = h["vmId"];
  const pidFile = h["pidFile"];
  if (typeof vmId !== "string" || typeof pidFile !== "string") throw new Error(`VMM handle of pid ${h.pid} lacks vmId/pidFile; it was not made by the ${kind} driver`);
  return { kind, vmId, pid: h.pid, controlSocket: h.controlSocket, pidFile };
}

/** What one driver answers for, per accelerator; the host-wide scan for orphans is the VMM service's. */
export type DriverVmmDeps = Omit<VmmDeps, "listAll" | "killOrphan" | "stateCompatibility">;

export function vmmDepsFromDriver(driver: VmmDriver, accel: Accel, helperDir: string, exits: PidExitWatcher): DriverVmmDeps {
  return {
    kind: driver.kind,
    async launch(spec, opId) {
      const h = await driver.launch(buildVmSpec(spec, driver.kind, accel, helperDir), opId);
      return { ...h };
    },
    async stop(handle, opts, opId) {
      await driver.stop(toDriverHandle(handle, driver.kind), { timeoutMs: opts.timeoutMs, force: opts.force }, opId);
    },
    isAlive: (handle) => driver.isRunning(toDriverHandle(handle, driver.kind)),
    setPaused: (handle, paused, opId) => driver.setPaused(toDriverHandle(handle, driver.kind), paused, opId),
    saveState: (handle, files, opId) => driver.saveState(toDriverHandle(handle, driver.kind), files, opId),
    sendIdentity: (handle, identity, opId) => driver.sendIdentity(toDriverHandle(handle, driver.kind), identity, opId),
    async release(vmId, opId) {
      // A VMM still running keeps its files (the helper would refuse anyway); the VM's stop deals with it.
      if ((await findVmmPid(vmId)) === null) await driver.release(vmId, opId);
    },
    async find(vmId, kind) {
      if (kind !== driver.kind) return undefined;
      const pid = await findVmmPid(vmId);
      if (pid === null) return undefined;
      return { kind, vmId, pid, controlSocket: controlSocketOf(kind, helperDir, vmId), pidFile: helperVmFiles.pidFile(helperDir, vmId) };
    },
    watchExit(handle, onExit) {
      const h = toDriverHandle(handle, driver.kind);
      // Checked after the pidfd is open, so the descriptor is known to hold this VM's VMM.
      return exits.watch(h.pid, () => checkVmmIdentity(h.pid, h.vmId).ok, onExit);
    },
  };
}
