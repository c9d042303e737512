import { readFile, stat } from "node:fs/promises";

/**
 * Parsers for the /proc files banger reads (pure functions, unit-tested) and
 * the thin readers around them. Clock ticks are USER_HZ = 100 on every Linux
 * architecture banger supports.
 */
export const CLOCK_TICKS_PER_SECOND = 100;
const PAGE_SIZE = 4096;

export interface ProcStat {
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  readonly utimeTicks: number;
  readonly stimeTicks: number;
  readonly startTimeTicks: number;
}

/** /proc/PID/stat. comm may contain spaces and parentheses, so split after the LAST ')'. */
export function parseProcStat(raw: string): ProcStat {
  const text = raw.trim();
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open === -1 || close === -1 || close < open) throw new Error(`unexpected /proc stat format: ${JSON.stringify(text.slice(0, 80))}`);
  const fields = text.slice(close + 2).split(/\s+/);
  // fields[0] is field 3 (state); utime is field 14, stime 15, starttime 22.
  if (fields.length < 20) throw new Error(`unexpected /proc stat field count (${fields.length + 2})`);
  const num = (i: number, name: string): number => {
    const v = Number(fields[i]);
    if (!Number.isFinite(v) || !/^-?[0-9]+$/.test(fields[i] ?? "")) throw new Error(`/proc stat ${name} is not a number: ${JSON.stringify(fields[i])}`);
    return v;
  };
  return {
    comm: text.slice(open + 1, close),
    state: fields[0] ?? "?",
    ppid: num(1, "ppid"),
    utimeTicks: num(11, "utime"),
    stimeTicks: num(12, "stime"),
    startTimeTicks: num(19, "starttime"),
  };
}

export interface ProcStatm {
  readonly sizePages: number;
  readonly residentPages: number;
}

export function parseProcStatm(raw: string): ProcStatm {
  const fields = raw.trim().split(/\s+/);
  if (fields.length < 2 || !fields.slice(0, 2).every((f) => /^[0-9]+$/.test(f))) throw new Error(`unexpected /proc statm format: ${JSON.stringify(raw.slice(0, 80))}`);
  return { sizePages: Number(fields[0]), residentPages: Number(fields[1]) };
}

/** /proc/uptime: seconds since boot (first field). */
export function parseProcUptime(raw: string): number {
  const first = raw.trim().split(/\s+/)[0] ?? "";
  if (!/^[0-9]+(\.[0-9]+)?$/.test(first)) throw new Error(`unexpected /proc uptime format: ${JSON.stringify(raw.slice(0, 80))}`);
  return Number(first);
}

/** /proc/meminfo MemTotal in bytes. */
export function parseMemTotal(raw: string): number {
  for (const line of raw.split("\n")) {
    if (!line.startsWith("MemTotal:")) continue;
    const [, value, unit = "kB"] = line.trim().split(/\s+/);
    if (value === undefined || !/^[0-9]+$/.test(value)) throw new Error("meminfo MemTotal is malformed");
    const mult: Record<string, number> = { kB: 1024, mB: 1024 ** 2, MB: 1024 ** 2, gB: 1024 ** 3, GB: 1024 ** 3 };
    const m = mult[unit];
    if (m === undefined) throw new Error(`unsupported meminfo unit ${JSON.stringify(unit)}`);
    return Number(value) * m;
  }
  throw new Error("meminfo MemTotal not found");
}

export interface ProcessStats {
  /** Average CPU use over the process lifetime, percent of one core. */
  readonly cpuPercent: number;
  readonly rssBytes: number;
  readonly vszBytes: number;
  readonly uptimeSeconds: number;
}

/** CPU% as the seeds compute it: total CPU time over wall time since the process started. */
export function computeStats(st: ProcStat, sm: ProcStatm, systemUptime: number, pageSize = PAGE_SIZE): ProcessStats {
  const elapsed = systemUptime - st.startTimeTicks / CLOCK_TICKS_PER_SECOND;
  const cpu = (st.utimeTicks + st.stimeTicks) / CLOCK_TICKS_PER_SECOND;
  return {
    cpuPercent: elapsed > 0 ? Math.max(0, (cpu / elapsed) * 100) : 0,
    rssBytes: sm.residentPages * pageSize,
    vszBytes: sm.sizePages * pageSize,
    uptimeSeconds: Math.max(0, elapsed),
  };
}

export async function readProcessStats(pid: number, procRoot = "/proc"): Promise<ProcessStats> {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`invalid pid ${pid}`);
  const [st, sm, up] = await Promise.all([
    readFile(`${procRoot}/${pid}/stat`, "utf8"),
    readFile(`${procRoot}/${pid}/statm`, "utf8"),
    readFile(`${procRoot}/uptime`, "utf8"),
  ]);
  return computeStats(parseProcStat(st), parseProcStatm(sm), parseProcUptime(up));
}

/**
 * CPU use over the next `windowMs`, percent of one core: what the process does now, which the
 * lifetime average hides (a VM paused after an hour of work still averages high). The kernel
 * counts in ticks of 10 ms, so a 1 s window resolves 1 %.
 */
export async function sampleCpuPercent(pid: number, windowMs: number, procRoot = "/proc"): Promise<number> {
  const read = async (): Promise<{ ticks: number; at: number }> => {
    const st = parseProcStat(await readFile(`${procRoot}/${pid}/stat`, "utf8"));
    return { ticks: st.utimeTicks + st.stimeTicks, at: performance.now() };
  };
  const a = await read();
  await new Promise((r) => setTimeout(r, windowMs));
  const b = await read();
  const wallS = (b.at - a.at) / 1000;
  return wallS > 0 ? Math.max(0, ((b.ticks - a.ticks) / CLOCK_TICKS_PER_SECOND / wallS) * 100) : 0;
}

/** NUL-separated argv of a process, or undefined when it is gone. */
export async function readCmdline(pid: number, procRoot = "/proc"): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`${procRoot}/${pid}/cmdline`, "utf8");
    return raw.split("\0").filter((a) => a !== "");
  } catch {
    return undefined;
  }
}

/** Bytes a file really occupies on disk (sparse files count only allocated blocks). */
export async function allocatedBytes(path: string): Promise<number> {
  try {
    const st = await stat(path);
    return st.blocks * 512;
  } catch {
    return 0;
  }
}
