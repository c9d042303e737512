import { readFileSync } from "node:fs";

/** USER_HZ: the unit of /proc/PID/stat's times, 100 on every Linux ABI banger runs on. */
const CLOCK_TICKS_PER_S = 100;

/** The fields of /proc/PID/stat after "(comm) ", so field N of proc(5) is index N - 3. */
function statFields(pid: number): string[] {
  return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
}

/** CPU time (user + system) of these processes and of their children they have reaped (forked tools), in ms. */
export function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    // utime stime cutime cstime: fields 14-17.
    const fields = statFields(pid);
    ticks += [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  }
  if (!Number.isFinite(ticks)) throw new Error(`unreadable /proc/PID/stat for ${pids.join(", ")}`);
  return (ticks * 1000) / CLOCK_TICKS_PER_S;
}

/**
 * When a process was started, as a wall-clock time (ms since the epoch), to 10 ms: its start time
 * (field 22, ticks since boot) set against /proc/uptime read now. The VMM's spawn is where its boot
 * starts, and no operation step records it (launch-vmm also waits for qemu's own set-up).
 */
export function processStartedAt(pid: number): number {
  const startTicks = Number(statFields(pid)[19]);
  const now = Date.now();
  const uptimeS = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
  if (!Number.isFinite(startTicks + uptimeS)) throw new Error(`unreadable start time of pid ${pid}`);
  return now - (uptimeS - startTicks / CLOCK_TICKS_PER_S) * 1000;
}
