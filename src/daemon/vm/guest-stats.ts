import { quoteForRemoteShell } from "../../system/shell-quote.js";
import { sshArgv, sshCapture } from "../../system/ssh.js";
import type { Runner } from "../../system/runner.js";

/** What the guest itself says it uses: its kernel's memory accounting and its filesystems. */
export interface GuestUsage {
  readonly memory: { readonly totalBytes: number; readonly availableBytes: number; readonly usedBytes: number };
  readonly disks: readonly { readonly mount: string; readonly sizeBytes: number; readonly usedBytes: number; readonly availableBytes: number }[];
}

/** Short: `vm stats` must answer even when the guest is wedged; then it says why it has no guest view. */
export const GUEST_STATS_TIMEOUT_MS = 4_000;

/** Parses /proc/meminfo (kB values); undefined when MemTotal or MemAvailable is missing. */
export function parseMeminfo(text: string): GuestUsage["memory"] | undefined {
  const kb = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(text);
    return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
  };
  const total = kb("MemTotal");
  const available = kb("MemAvailable");
  if (total === undefined || available === undefined) return undefined;
  return { totalBytes: total, availableBytes: available, usedBytes: Math.max(0, total - available) };
}

/** Parses `df -P -k` (POSIX format, 1024-byte blocks): one entry per mount point listed. */
export function parseDf(text: string): GuestUsage["disks"] {
  const out: GuestUsage["disks"][number][] = [];
  for (const line of text.split("\n")) {
    const m = /^\S+\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+(\/\S*)$/.exec(line.trim());
    if (m === null) continue;
    out.push({ mount: m[4] ?? "", sizeBytes: Number(m[1]) * 1024, usedBytes: Number(m[2]) * 1024, availableBytes: Number(m[3]) * 1024 });
  }
  return out;
}

/** Marks where meminfo ends and df begins in the one ssh round trip. */
const SEPARATOR = "--banger-df--";

/**
 * Reads the guest's memory and disk use over its ssh (one round trip), or says why it could not.
 * The output is the guest's and untrusted: only numbers are taken from it.
 */
export async function readGuestUsage(runner: Runner, target: { keyPath: string; knownHostsPath: string; host: string }): Promise<{ usage: GuestUsage } | { error: string }> {
  const command = `${quoteForRemoteShell(["cat", "/proc/meminfo"])}; echo ${SEPARATOR}; ${quoteForRemoteShell(["df", "-P", "-k", "/", "/root"])}`;
  const argv = sshArgv(target, { command: [command], tty: false });
  let r;
  try {
    r = await sshCapture(runner, argv, { timeoutMs: GUEST_STATS_TIMEOUT_MS });
  } catch (e) {
    return { error: `could not reach the guest over ssh within ${GUEST_STATS_TIMEOUT_MS / 1000} s (${e instanceof Error ? e.message.split("\n")[0] ?? "" : String(e)})` };
  }
  const text = r.stdout.subarray(0, 64 * 1024).toString("utf8");
  const [mem = "", df = ""] = text.split(`${SEPARATOR}\n`);
  const memory = parseMeminfo(mem);
  if (memory === undefined) return { error: `the guest's /proc/meminfo could not be read (ssh exit ${r.exitCode})` };
  return { usage: { memory, disks: parseDf(df) } };
}
