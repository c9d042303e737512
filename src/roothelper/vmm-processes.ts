import { closeSync, constants, readFileSync, writeSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { HELPER_VM_LEAVES } from "../paths/paths.js";
import { RpcError } from "../rpc/errors.js";
import { dirfdCalls } from "../system/dirfd-calls.js";
import { parseProcStat } from "../system/proc.js";
import { checkVmmIdentity } from "../vmm/identity.js";
import { RESOLVE } from "./fs/beneath.js";
import type { ManagedRoot } from "./fs/managed-root.js";

/** The launch record of `vmId`, beneath the run directories' root. */
function recordOf(vmId: string): string {
  return `${vmId}/${HELPER_VM_LEAVES.launchRecord}`;
}

/**
 * Which processes the helper may signal, and the descriptors it signals
 * them through. A pid is a name that the kernel recycles; a pidfd names one
 * process for as long as it is held, so a signal through it can never reach
 * a process that later got the same pid.
 *
 * - A VMM this helper launched is tracked by the pidfd opened right after
 *   spawning it (the helper is its parent and reaps it only on SIGCHLD, so
 *   the pid cannot have been reused in between).
 * - A VMM launched by an earlier run of the helper (VMMs outlive helper
 *   restarts) is recognised by the record the helper wrote when it launched
 *   it, in the VM's root-owned run directory (vmm-run-dirs.ts), 0600: its pid
 *   and its start time, which a later process with the same pid cannot share.
 * - Any other pid is signalled only if every one of its uids is the
 *   owner's: then the owner could signal it anyway, and the helper grants
 *   nothing.
 * What is read from /proc is read AFTER opening the pidfd and confirmed by
 * signal 0 through that pidfd: if the process is still alive then, the
 * reads were of it, not of a successor.
 */
export class VmmProcesses {
  private readonly launched = new Map<number, { readonly vmId: string; readonly pidFd: number }>();

  /**
   * `records`: the VMMs' root-owned run directories (opened and checked at
   * start); the record of a launch is <vm id>/launch in there, which lets a
   * restarted helper recognise its VMMs. Without it only this run's launches
   * are known.
   */
  constructor(private readonly ownerUid: number, private readonly records?: ManagedRoot, private readonly procRoot = "/proc") {}

  /** Right after spawning: keep a pidfd of the child, and record it for a helper restart. */
  track(pid: number, vmId: string): void {
    this.sweep();
    const pidFd = dirfdCalls().pidfdOpen(pid);
    this.launched.set(pid, { vmId, pidFd });
    if (this.records === undefined) return;
    const fd = dirfdCalls().openat2(this.records.fd, recordOf(vmId), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600, RESOLVE);
    try {
      writeSync(fd, `${pid} ${this.startTime(pid)}\n`);
    } finally {
      closeSync(fd);
    }
  }

  /** Whether the record of an earlier launch of `vmId` names this very process (pid and start time). */
  private recorded(pid: number, vmId: string): boolean {
    if (this.records === undefined) return false;
    let text: string;
    try {
      const fd = dirfdCalls().openat2(this.records.fd, recordOf(vmId), constants.O_RDONLY | constants.O_NOFOLLOW, 0, RESOLVE);
      try {
        text = readFileSync(fd, "utf8");
      } finally {
        closeSync(fd);
      }
    } catch {
      return false;
    }
    const [recPid, recStart] = text.trim().split(" ");
    return Number(recPid) === pid && recStart === String(this.startTime(pid));
  }

  private startTime(pid: number): number | undefined {
    try {
      return parseProcStat(readFileSync(`${this.procRoot}/${pid}/stat`, "utf8")).startTimeTicks;
    } catch {
      return undefined;
    }
  }

  /** Whether a VMM this helper launched is still running (not exited, not a zombie). */
  launchedAlive(pid: number): boolean {
    const t = this.launched.get(pid);
    return t !== undefined && this.alive(t.pidFd, pid);
  }

  /** Send `signal` (a name from os.constants.signals, or 0) to the VMM of `vmId` at `pid`, through a pidfd. */
  signal(field: string, pid: number, vmId: string, signal: NodeJS.Signals | 0): void {
    this.withPidfd(field, pid, vmId, (fd) => {
      dirfdCalls().pidfdSendSignal(fd, signal === 0 ? 0 : osConstants.signals[signal]);
    });
  }

  /** SIGKILL, then wait (bounded) until the process has exited; whether it did. `launchedOnly`: see pidfdFor. */
  async kill(field: string, pid: number, vmId: string, timeoutMs: number, launchedOnly = false): Promise<boolean> {
    let gone = false;
    await this.withPidfdAsync(field, pid, vmId, launchedOnly, async (fd) => {
      dirfdCalls().pidfdSendSignal(fd, osConstants.signals.SIGKILL);
      const deadline = Date.now() + timeoutMs;
      while (!(gone = !this.alive(fd, pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    });
    return gone;
  }

  private withPidfd(field: string, pid: number, vmId: string, use: (fd: number) => void): void {
    const { fd, borrowed } = this.pidfdFor(field, pid, vmId, false);
    try {
      use(fd);
    } finally {
      if (!borrowed) closeSync(fd);
    }
  }

  private async withPidfdAsync(field: string, pid: number, vmId: string, launchedOnly: boolean, use: (fd: number) => Promise<void>): Promise<void> {
    const { fd, borrowed } = this.pidfdFor(field, pid, vmId, launchedOnly);
    try {
      await use(fd);
    } finally {
      if (!borrowed) closeSync(fd);
    }
  }

  /**
   * `launchedOnly`: refuse a process that is not one of the helper's own launches even when it runs
   * wholly as the owner. The owner's look-alike is then not refused for safety (the owner could
   * signal it) but for correctness: the daemon asks this for a VMM no VM of its own claims, and only
   * a launch record proves that VMM is this install's rather than another of the owner's.
   */
  private pidfdFor(field: string, pid: number, vmId: string, launchedOnly: boolean): { fd: number; borrowed: boolean } {
    if (!Number.isSafeInteger(pid) || pid <= 1) throw new RpcError("bad_params", `${field}: ${pid} is not a valid pid`);
    const t = this.launched.get(pid);
    if (t !== undefined && this.alive(t.pidFd, pid)) {
      if (t.vmId !== vmId) throw new RpcError("bad_params", `${field}: process ${pid} is the VMM of another VM`);
      return { fd: t.pidFd, borrowed: true };
    }
    let fd: number;
    try {
      fd = dirfdCalls().pidfdOpen(pid);
    } catch {
      throw new RpcError("not_found", `${field}: process ${pid} does not exist`);
    }
    try {
      const verdict = checkVmmIdentity(pid, vmId, this.procRoot);
      const uids = this.uidsOf(pid);
      const ours = this.recorded(pid, vmId);
      // After the reads: still the process the pidfd names, so they described it.
      if (!this.alive(fd, pid)) throw new RpcError("not_found", `${field}: process ${pid} has exited`);
      if (!verdict.ok) throw new RpcError(verdict.reason === "gone" ? "not_found" : "bad_params", `${field}: ${verdict.detail}`);
      if (launchedOnly && !ours) throw new RpcError("bad_params", `${field}: process ${pid} is not a VMM this helper launched (no launch record of ${vmId}); it is left alone`);
      if (!ours && (uids.length === 0 || uids.some((u) => u !== this.ownerUid))) {
        throw new RpcError("bad_params", `${field}: process ${pid} runs as uid ${uids.join("/")}; the helper signals only VMMs it launched or processes running wholly as the owner (uid ${this.ownerUid})`);
      }
      return { fd, borrowed: false };
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Alive through the pidfd (not exited and reaped) and not a zombie (/proc read only while the pidfd says it is that process). */
  private alive(fd: number, pid: number): boolean {
    try {
      dirfdCalls().pidfdSendSignal(fd, 0);
    } catch {
      return false;
    }
    try {
      const state = parseProcStat(readFileSync(`${this.procRoot}/${pid}/stat`, "utf8")).state;
      return state !== "Z" && state !== "X";
    } catch {
      return false;
    }
  }

  /** Real, effective, saved and fs uids from /proc/PID/status (empty when the process is gone). */
  uidsOf(pid: number): number[] {
    try {
      const line = readFileSync(`${this.procRoot}/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("Uid:")) ?? "";
      return line.split(/\s+/).slice(1).filter((x) => x !== "").map(Number);
    } catch {
      return [];
    }
  }

  /** Forget launched VMMs that are gone, closing their pidfds. */
  private sweep(): void {
    for (const [pid, t] of this.launched) {
      if (this.alive(t.pidFd, pid)) continue;
      closeSync(t.pidFd);
      this.launched.delete(pid);
    }
  }
}
