import { mkdirSync, rmSync } from "node:fs";
import { runtimeFiles, vmFiles } from "../../paths/paths.js";
import { BASE_CMDLINE, TCG_KERNEL_ARGS } from "../../image/cmdline.js";
import type { PidExitWatcher } from "../../system/pid-exit-watcher.js";
import { checkVmmIdentity, findVmmPid } from "../../vmm/identity.js";
import type { Accel, VmmDriver, VmmHandle as DriverHandle, VmSpec } from "../../vmm/driver.js";
import type { LaunchSpec, VmmDeps, VmmHandle } from "./deps.js";

/**
 * Adapts a VMM driver (src/vmm) to the lifecycle's VmmDeps: turns the
 * lifecycle's LaunchSpec into the driver's VmSpec (kernel flavour per VMM,
 * guest-contract cmdline, runtime socket/pidfile paths) and carries the
 * driver's handle through handles.json unchanged so stop/isAlive get it back.
 */
export function buildVmSpec(spec: LaunchSpec, kind: VmmDriver["kind"], accel: Accel, runtimeDir: string): VmSpec {
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
    controlSocket: kind === "firecracker" ? runtimeFiles.apiSocket(runtimeDir, spec.vmId) : runtimeFiles.qmpSocket(runtimeDir, spec.vmId),
    pidFile: runtimeFiles.pidFile(runtimeDir, spec.vmId),
    consoleLog: spec.consoleLog,
    vmmLog: vmFiles.vmmLog(spec.vmDir),
    metricsPath: kind === "firecracker" ? vmFiles.metrics(spec.vmDir) : undefined,
    accel,
    vsock: kind === "firecracker" ? { cid: spec.lease.cid, udsPath: runtimeFiles.vsockSocket(runtimeDir, spec.vmId) } : undefined,
  };
}

function toDriverHandle(h: VmmHandle, kind: VmmDriver["kind"]): DriverHandle {
  const vmId = h["vmId"];
  const pidFile = h["pidFile"];
  if (typeof vmId !== "string" || typeof pidFile !== "string") throw new Error(`VMM handle of pid ${h.pid} lacks vmId/pidFile; it was not made by the ${kind} driver`);
  return { kind, vmId, pid: h.pid, controlSocket: h.controlSocket, pidFile };
}

/** What one driver answers for, per accelerator; the host-wide scan for orphans is the VMM service's. */
export type DriverVmmDeps = Omit<VmmDeps, "listAll" | "killOrphan">;

export function vmmDepsFromDriver(driver: VmmDriver, accel: Accel, runtimeDir: string, exits: PidExitWatcher): DriverVmmDeps {
  return {
    kind: driver.kind,
    async launch(spec, opId) {
      // The helper writes the pidfile and the VMM its sockets here; the owner's 0700 dir keeps them private.
      mkdirSync(runtimeFiles.vmDir(runtimeDir, spec.vmId), { recursive: true, mode: 0o700 });
      const h = await driver.launch(buildVmSpec(spec, driver.kind, accel, runtimeDir), opId);
      return { ...h };
    },
    async stop(handle, opts, opId) {
      const h = toDriverHandle(handle, driver.kind);
      await driver.stop(h, { timeoutMs: opts.timeoutMs, force: opts.force }, opId);
      rmSync(runtimeFiles.vmDir(runtimeDir, h.vmId), { recursive: true, force: true });
    },
    isAlive: (handle) => driver.isRunning(toDriverHandle(handle, driver.kind)),
    async release(vmId) {
      if ((await findVmmPid(vmId)) === null) rmSync(runtimeFiles.vmDir(runtimeDir, vmId), { recursive: true, force: true });
    },
    async find(vmId, kind) {
      if (kind !== driver.kind) return undefined;
      const pid = await findVmmPid(vmId);
      if (pid === null) return undefined;
      const controlSocket = kind === "firecracker" ? runtimeFiles.apiSocket(runtimeDir, vmId) : runtimeFiles.qmpSocket(runtimeDir, vmId);
      return { kind, vmId, pid, controlSocket, pidFile: runtimeFiles.pidFile(runtimeDir, vmId) };
    },
    watchExit(handle, onExit) {
      const h = toDriverHandle(handle, driver.kind);
      // Checked after the pidfd is open, so the descriptor is known to hold this VM's VMM.
      return exits.watch(h.pid, () => checkVmmIdentity(h.pid, h.vmId).ok, onExit);
    },
  };
}
