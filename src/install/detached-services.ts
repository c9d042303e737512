import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { dirfdCalls } from "../system/dirfd-calls.js";
import { launchDetached } from "../system/launch.js";
import { parseProcStat } from "../system/proc.js";
import { installFiles, type InstallLayout, type ServiceName } from "./layout.js";
import { writeFileAtomic, type InstallMetadata } from "./metadata.js";
import { ownerDir } from "./owner-dir.js";
import { argvAsUser, serviceCommand } from "./service-command.js";
import type { ServiceManager, ServiceStatus } from "./service-manager.js";

/** What a pidfile records: the pid alone could be reused by an unrelated process after a crash. */
const pidRecordSchema = z.object({ pid: z.number().int().positive(), start_time: z.number().int().min(0), service: z.string() }).strict();
type PidRecord = z.output<typeof pidRecordSchema>;

export interface DetachedOptions {
  /** Absolute path of util-linux setpriv, which drops to the owner (with its groups) before bangerd starts. */
  readonly setpriv: string;
  /** How long a service gets to exit on SIGTERM before SIGKILL. */
  readonly stopTimeoutMs?: number;
  readonly procRoot?: string;
}

const SIGKILL = 9;
const SIGTERM = 15;

/**
 * The services as detached processes (hosts without systemd as PID 1): each in its own session,
 * output appended to <log dir>/<service>.log, its pid and start time in <pid dir>/<service>.pid
 * (root's). Stop signals exactly the recorded process, through a pidfd, and only once its start
 * time and command line show it is still that service: never a process group, so the VMMs the
 * helper started live on, and never a stranger that got the pid after a crash.
 */
export function detachedServices(meta: InstallMetadata, layout: InstallLayout, opts: DetachedOptions): ServiceManager {
  const procRoot = opts.procRoot ?? "/proc";
  const stopTimeoutMs = opts.stopTimeoutMs ?? 30_000;

  /** The live process a pidfile names, or why it names none. */
  const recorded = (service: ServiceName): { rec: PidRecord } | { why: string } => {
    let raw: string;
    try {
      raw = readFileSync(installFiles.pidFile(layout, service), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { why: "not started (no pidfile)" };
      throw e;
    }
    const parsed = pidRecordSchema.safeParse(JSON.parse(raw) as unknown);
    if (!parsed.success || parsed.data.service !== service) return { why: "stale pidfile (unreadable)" };
    const rec = parsed.data;
    const alive = isThatProcess(procRoot, rec, service);
    return alive === true ? { rec } : { why: `stale pidfile (pid ${rec.pid}: ${alive})` };
  };

  const startNow = (service: ServiceName): void => {
    if ("rec" in recorded(service)) return;
    const cmd = serviceCommand(meta, layout, service);
    if (service === "bangerd") ownerDir(layout.runtimeDir, meta.owner);
    mkdirSync(layout.pidDir, { recursive: true, mode: 0o755 });
    mkdirSync(layout.logDir, { recursive: true, mode: 0o755 });
    const logFd = openSync(installFiles.logFile(layout, service), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
    let pid: number;
    try {
      if (!fstatSync(logFd).isFile()) throw new Error(`${installFiles.logFile(layout, service)} is not a regular file; remove it`);
      pid = launchDetached({ argv: argvAsUser(cmd, opts.setpriv), logFd, env: { ...cmd.env }, cwd: "/" });
    } finally {
      closeSync(logFd);
    }
    let startTime: number;
    try {
      startTime = parseProcStat(readFileSync(`${procRoot}/${pid}/stat`, "utf8")).startTimeTicks;
    } catch {
      throw new Error(`${service} exited right after it started; see ${installFiles.logFile(layout, service)}`);
    }
    writeFileAtomic(installFiles.pidFile(layout, service), JSON.stringify({ pid, start_time: startTime, service } satisfies PidRecord) + "\n", 0o644);
  };

  // A throw inside the executor rejects: callers see one kind of failure.
  const start = (service: ServiceName): Promise<void> => new Promise((resolve) => { startNow(service); resolve(); });

  const stop = async (service: ServiceName): Promise<void> => {
    const found = recorded(service);
    if ("rec" in found) await terminate(procRoot, found.rec, service, stopTimeoutMs);
    rmSync(installFiles.pidFile(layout, service), { force: true });
  };

  return {
    mode: "detached",
    start,
    stop,
    async restart(service) {
      await stop(service);
      await start(service);
    },
    status(service): Promise<ServiceStatus> {
      const found = recorded(service);
      return Promise.resolve("rec" in found ? { service, running: true, pid: found.rec.pid, detail: "running (detached)" } : { service, running: false, detail: found.why });
    },
  };
}

/** true when the pid still names the process the record describes, else what it names instead. */
function isThatProcess(procRoot: string, rec: PidRecord, service: ServiceName): true | string {
  let st;
  try {
    st = parseProcStat(readFileSync(`${procRoot}/${rec.pid}/stat`, "utf8"));
  } catch {
    return "no such process";
  }
  if (st.state === "Z") return "exited";
  if (st.startTimeTicks !== rec.start_time) return "reused by another process";
  // A service's command line names its bundle (node … <current>/dist/bin/<service>.cjs); setpriv has exec'd by now.
  const cmdline = readFileSync(`${procRoot}/${rec.pid}/cmdline`, "utf8").split("\0");
  if (!cmdline.some((a) => a.endsWith(`/${service}.cjs`))) return `runs ${cmdline[0] ?? "?"}, not ${service}`;
  return true;
}

/** SIGTERM through a pidfd (the record was just checked, and the pidfd keeps naming that process), SIGKILL after the timeout. */
async function terminate(procRoot: string, rec: PidRecord, service: ServiceName, timeoutMs: number): Promise<void> {
  const calls = dirfdCalls();
  let fd: number;
  try {
    fd = calls.pidfdOpen(rec.pid);
  } catch {
    return;
  }
  try {
    // Checked again after the pidfd is open: before that, the pid could have been reused.
    if (isThatProcess(procRoot, rec, service) !== true) return;
    calls.pidfdSendSignal(fd, SIGTERM);
    const deadline = Date.now() + timeoutMs;
    while (isThatProcess(procRoot, rec, service) === true) {
      if (Date.now() > deadline) {
        calls.pidfdSendSignal(fd, SIGKILL);
        await sleep(200);
        break;
      }
      await sleep(50);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
  } finally {
    closeSync(fd);
  }
}
