import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";

/** The executables banger launches and may therefore signal. */
export const VMM_EXECUTABLES: ReadonlySet<string> = new Set(["firecracker", "jailer", "qemu-system-x86_64", "qemu-system-x86_64-microvm"]);

/** Linux keeps the first 15 bytes of an executable's name as the process's comm. */
const VMM_COMMS: ReadonlySet<string> = new Set([...VMM_EXECUTABLES].map((e) => e.slice(0, 15)));

/**
 * A cheap pre-check for scans of every process, on the text of /proc/PID/comm: a field of the
 * process, while its cmdline is read out of its memory. A process whose comm is not a VMM's name
 * can still be judged in full by checkVmmIdentity; a process whose comm is one must be.
 */
export function isVmmComm(comm: string): boolean {
  // A retitled process (setproctitle style, like the Firecracker test double) has its title, cut to 15 bytes, as comm.
  return VMM_COMMS.has(comm.trimEnd().split(" ")[0] ?? "");
}

/**
 * argv from the raw bytes of /proc/PID/cmdline. A process that rewrote its
 * title (setproctitle style, e.g. Node's process.title) has ONE NUL-terminated
 * string with spaces and trailing NUL padding; split that on spaces so it is
 * judged like any other argv.
 */
export function parseCmdline(raw: string): string[] {
  const argv = raw.split("\0").filter((a) => a !== "");
  const only = argv[0];
  if (argv.length === 1 && only !== undefined && only.includes(" ")) return only.split(" ").filter((a) => a !== "");
  return argv;
}

export type IdentityVerdict =
  | { readonly ok: true; readonly argv: readonly string[] }
  | { readonly ok: false; readonly reason: "gone" | "not-vmm" | "other-vm"; readonly detail: string };

/**
 * Is `pid` the VMM of the VM identified by `mention` (its control socket path
 * or VM id)? Its argv[0] basename must be a known VMM executable and some
 * argument must contain `mention`, so a recycled pid never passes.
 */
export function checkVmmIdentity(pid: number, mention: string | undefined, procRoot = "/proc"): IdentityVerdict {
  let raw: string;
  try {
    raw = readFileSync(`${procRoot}/${pid}/cmdline`, "utf8");
  } catch {
    return { ok: false, reason: "gone", detail: `process ${pid} does not exist` };
  }
  const argv = parseCmdline(raw);
  // A zombie (exited, not yet reaped) has an empty cmdline: it is not running a guest.
  if (argv.length === 0) return { ok: false, reason: "gone", detail: `process ${pid} has exited` };
  const exe = (argv[0] ?? "").split("/").pop() ?? "";
  if (!VMM_EXECUTABLES.has(exe)) return { ok: false, reason: "not-vmm", detail: `process ${pid} (${exe || "?"}) is not a VMM` };
  if (mention !== undefined && !argv.some((a) => a.includes(mention))) return { ok: false, reason: "other-vm", detail: `process ${pid} is a VMM but not the one of ${mention}` };
  return { ok: true, argv };
}

/**
 * Processes whose comm is a VMM's name, from a scan of /proc. The short comm is checked first,
 * since reading every process's cmdline means reading every process's memory. Asynchronous: a
 * scan of every process is long enough to matter to an event loop that must keep answering.
 */
async function* vmmCandidates(procRoot: string): AsyncGenerator<number> {
  for (const name of await readdir(procRoot)) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let comm: string;
    try {
      comm = await readFile(`${procRoot}/${pid}/comm`, "utf8");
    } catch {
      continue;
    }
    if (isVmmComm(comm)) yield pid;
  }
}

/**
 * The live VMM whose argv carries `vmId`, found by scanning /proc: how a
 * launch refuses a second VMM on one VM's disks, and how a VM's VMM is found
 * again when its recorded pid is missing or names another process now.
 */
export async function findVmmPid(vmId: string, procRoot = "/proc"): Promise<number | null> {
  for await (const pid of vmmCandidates(procRoot)) {
    if (checkVmmIdentity(pid, vmId, procRoot).ok) return pid;
  }
  return null;
}

const VM_ID_RE = /^[0-9a-f]{32}$/;

/**
 * The banger VM id a VMM's argv carries, or undefined: qemu is launched with `-name banger-<id>`,
 * Firecracker (and the jailer) with `--id <id>`. Anything else is not a VMM banger launched.
 */
export function bangerVmIdOf(argv: readonly string[]): string | undefined {
  for (const [i, a] of argv.entries()) {
    const named = /^banger-([0-9a-f]{32})$/.exec(a)?.[1];
    if (named !== undefined && argv[i - 1] === "-name") return named;
    const next = argv[i + 1];
    if (a === "--id" && next !== undefined && VM_ID_RE.test(next)) return next;
  }
  return undefined;
}

export interface BangerVmm {
  readonly pid: number;
  readonly vmId: string;
  readonly kind: "qemu" | "firecracker";
}

/**
 * Every live VMM carrying a banger VM id (the daemon's start-up looks for ones no VM claims). A
 * process judged here is only a candidate: the root helper decides, from its own launch records,
 * whether it may be signalled.
 */
export async function listBangerVmms(procRoot = "/proc"): Promise<BangerVmm[]> {
  const out: BangerVmm[] = [];
  for await (const pid of vmmCandidates(procRoot)) {
    const verdict = checkVmmIdentity(pid, undefined, procRoot);
    if (!verdict.ok) continue;
    const vmId = bangerVmIdOf(verdict.argv);
    const exe = (verdict.argv[0] ?? "").split("/").pop() ?? "";
    if (vmId !== undefined) out.push({ pid, vmId, kind: exe.startsWith("qemu") ? "qemu" : "firecracker" });
  }
  return out;
}
