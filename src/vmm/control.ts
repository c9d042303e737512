import { readFileSync } from "node:fs";
import type { HelperClient } from "../daemon/helper-client.js";
import { privVmmSendIdentity, type VmIdentity } from "../rpc/priv/agent.js";
import { privCleanupVmm, privKillProcess, privSignalProcess, privVmmSaveState, privVmmSetPaused, privVmmShutdown } from "../rpc/priv/vmm.js";
import type { Logger } from "../system/log.js";
import { parseProcStat, readProcessStats, type ProcStat } from "../system/proc.js";
import { NotRunningError, StalePidError, type SaveResult, type SnapshotFiles, type StopOptions, type StopResult, type VmmHandle, type VmmRef, type VmmStats } from "./driver.js";
import { checkVmmIdentity } from "./identity.js";

/**
 * The half of a driver that is the same for every VMM: identity checks,
 * adoption from a pidfile, stats, and the stop ladder
 * (graceful request -> wait -> SIGTERM -> wait -> SIGKILL). Reads of /proc
 * happen here in the daemon; anything that acts on the process goes through
 * the root helper, which re-checks identity before acting.
 */
export interface ControlDeps {
  readonly helper: HelperClient;
  readonly logger: Logger;
  readonly procRoot?: string;
  /** How long SIGTERM gets before SIGKILL. */
  readonly termGraceMs?: number;
}

/**
 * VMMs whose identity (binary + VM id in the cmdline) was verified, by pid and start time. Reading
 * another process's cmdline walks its memory under its mmap lock, which a TCG guest contends; a
 * booting VM is checked every second, so after the first full check the pid's start time (a short
 * field of /proc/PID/stat) says whether it is still the same process.
 */
const verified = new Map<string, number>();

export function isRunning(deps: ControlDeps, handle: VmmHandle): boolean {
  const procRoot = deps.procRoot ?? "/proc";
  const key = `${procRoot}/${handle.pid}:${handle.vmId}`;
  let st: ProcStat;
  try {
    st = parseProcStat(readFileSync(`${procRoot}/${handle.pid}/stat`, "utf8"));
  } catch {
    verified.delete(key);
    return false;
  }
  if (st.state === "Z" || st.state === "X") {
    verified.delete(key);
    return false;
  }
  if (verified.get(key) === st.startTimeTicks) return true;
  const ok = checkVmmIdentity(handle.pid, handle.vmId, procRoot).ok;
  if (ok) verified.set(key, st.startTimeTicks);
  else verified.delete(key);
  return ok;
}

/** Read a pidfile: the pid, or undefined when missing/empty/garbage. */
export function readPidFile(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const t = text.trim();
  if (!/^[1-9][0-9]{0,9}$/.test(t)) return undefined;
  return Number(t);
}

export function adopt(deps: ControlDeps, ref: VmmRef): VmmHandle {
  const pid = readPidFile(ref.pidFile);
  if (pid === undefined) throw new NotRunningError(ref.pidFile, "pidfile missing, empty or not a pid");
  const verdict = checkVmmIdentity(pid, ref.vmId, deps.procRoot);
  if (verdict.ok) return { ...ref, pid };
  if (verdict.reason === "gone") throw new NotRunningError(ref.pidFile, verdict.detail);
  throw new StalePidError(ref.pidFile, pid, verdict.detail);
}

/** Freeze or thaw the guest through the helper; throws unless the VMM then reports the state asked for. */
export async function setPaused(deps: ControlDeps, handle: VmmHandle, paused: boolean, opId: string): Promise<void> {
  if (!isRunning(deps, handle)) throw new NotRunningError(handle.pidFile, `pid ${handle.pid} is not this VM's VMM any more`);
  const res = await deps.helper.call(privVmmSetPaused, { pid: handle.pid, vm_id: handle.vmId, kind: handle.kind, paused }, opId);
  if (res.paused !== paused) throw new Error(`the VMM of ${handle.vmId} reports it is ${res.paused ? "paused" : "running"} after being asked to ${paused ? "pause" : "resume"}`);
}

/** How long a save may take: the stream is written at ~150 MB/s here, so this covers guests of several GiB. */
const SAVE_TIMEOUT_MS = 120_000;

/** Save a paused guest's state into the owner's snapshot files, through the helper (which refuses a running guest). */
export async function saveState(deps: ControlDeps, handle: VmmHandle, files: SnapshotFiles, opId: string): Promise<SaveResult> {
  if (!isRunning(deps, handle)) throw new NotRunningError(handle.pidFile, `pid ${handle.pid} is not this VM's VMM any more`);
  const res = await deps.helper.call(
    privVmmSaveState,
    { pid: handle.pid, vm_id: handle.vmId, kind: handle.kind, state_path: files.state, memory_path: files.memory, timeout_ms: SAVE_TIMEOUT_MS },
    opId,
    SAVE_TIMEOUT_MS + 10_000,
  );
  return { bytes: res.bytes, elapsedMs: res.elapsed_ms, vmmVersion: res.vmm_version };
}

/** Send a fork's identity to the guest agent through the helper; the helper's own timeout plus a margin bounds the call. */
export async function sendIdentity(deps: ControlDeps, handle: VmmHandle, identity: VmIdentity, opId: string, timeoutMs = 15_000): Promise<{ ackMs: number }> {
  if (!isRunning(deps, handle)) throw new NotRunningError(handle.pidFile, `pid ${handle.pid} is not this VM's VMM any more`);
  const res = await deps.helper.call(privVmmSendIdentity, { ...identity, pid: handle.pid, vm_id: handle.vmId, kind: handle.kind, timeout_ms: timeoutMs }, opId, timeoutMs + 5_000);
  return { ackMs: res.ack_ms };
}

export async function stats(deps: ControlDeps, handle: VmmHandle): Promise<VmmStats> {
  if (!isRunning(deps, handle)) throw new NotRunningError(handle.pidFile, `pid ${handle.pid} is not this VM's VMM any more`);
  const s = await readProcessStats(handle.pid, deps.procRoot);
  return { pid: handle.pid, cpuPercent: s.cpuPercent, rssBytes: s.rssBytes, uptimeSeconds: s.uptimeSeconds };
}

async function waitGone(deps: ControlDeps, handle: VmmHandle, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(deps, handle)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isRunning(deps, handle);
}

/**
 * Have the helper remove what it keeps for VM `vmId`'s VMM (its root-owned run directory with the
 * pidfile and sockets, a jail with root-owned hard links to the VM's disks) once that VMM is gone:
 * the daemon cannot, and must not be able to, remove root's files. The helper refuses while a VMM of
 * the VM runs.
 */
export async function release(deps: ControlDeps, vmId: string, opId: string): Promise<void> {
  await deps.helper.call(privCleanupVmm, { vm_id: vmId }, opId);
}

export async function stop(deps: ControlDeps, handle: VmmHandle, options: StopOptions, opId: string): Promise<StopResult> {
  const started = Date.now();
  const how = await bringDown(deps, handle, options, opId);
  await release(deps, handle.vmId, opId);
  return { how, elapsedMs: Date.now() - started };
}

/** The stop ladder: graceful request, SIGTERM, SIGKILL, each only while the VMM still runs. */
async function bringDown(deps: ControlDeps, handle: VmmHandle, options: StopOptions, opId: string): Promise<StopResult["how"]> {
  const log = deps.logger.child({ op_id: opId, vm_id: handle.vmId });
  if (!isRunning(deps, handle)) return "not-running";
  if (options.force !== true) {
    try {
      await deps.helper.call(privVmmShutdown, { pid: handle.pid, vm_id: handle.vmId, kind: handle.kind }, opId);
      if (await waitGone(deps, handle, options.timeoutMs)) return "graceful";
      log.warn("guest did not shut down in time; sending SIGTERM", { timeout_ms: options.timeoutMs });
    } catch (e) {
      // The VMM may be wedged or already exiting; fall through to signals rather than give up.
      log.warn("graceful shutdown request failed; sending SIGTERM", { error: e });
    }
    if (!isRunning(deps, handle)) return "graceful";
    try {
      await deps.helper.call(privSignalProcess, { pid: handle.pid, vm_id: handle.vmId, signal: "SIGTERM" }, opId);
      if (await waitGone(deps, handle, deps.termGraceMs ?? 3000)) return "terminated";
    } catch (e) {
      log.warn("SIGTERM failed; sending SIGKILL", { error: e });
    }
  }
  if (!isRunning(deps, handle)) return "terminated";
  const { exited } = await deps.helper.call(privKillProcess, { pid: handle.pid, vm_id: handle.vmId }, opId);
  if (!exited && isRunning(deps, handle)) throw new Error(`VMM pid ${handle.pid} of VM ${handle.vmId} survived SIGKILL (stuck in the kernel?); check /proc/${handle.pid}/status`);
  return "killed";
}
