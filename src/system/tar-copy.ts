import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { CommandError } from "./runner.js";
import { quoteForRemoteShell as q } from "./ssh.js";

/**
 * `vm cp` as one tar stream over one ssh exec: the host's `tar` on one end,
 * the guest's (busybox or GNU) on the other, both keeping modes, mtimes and
 * symlinks. The two children are joined by a pipe they share directly, so no
 * byte of the copy passes through node: memory stays flat whatever the size.
 * Every command is an argv array; remote paths reach the guest's shell only
 * as single-quoted words ($1, $2 of a fixed script).
 */

/** The ssh argv up to (not including) the remote command: `ssh ... user@host`. */
export type SshPrefix = readonly string[];

export interface CopyProgress {
  write(text: string): unknown;
}

/** A remote path as the guest's tar and shell should see it: relative ones are under the login's home, never an option. */
export function remotePath(p: string): string {
  if (p === "" || p.includes("\0")) throw new Error("give a path in the VM after NAME:");
  return p.startsWith("/") ? p : `./${p}`;
}

/** Name of the last component, refusing `/` and `.`/`..`, which have no name to copy under. */
function lastName(p: string): string {
  const name = basename(p.replace(/\/+$/, ""));
  if (name === "" || name === "." || name === "..") throw new Error(`${JSON.stringify(p)} names no file or directory of its own; name the directory to copy, e.g. /srv/data`);
  return name;
}

/**
 * Extracts the stream into DST if it is a directory, else into a temporary
 * directory beside DST and renames its one entry to DST (docker cp's rule), so
 * a failed copy never leaves a half-written DST. busybox tar restores the
 * mtimes of files only, so the stream carries MTIMES_NAME ("SECONDS PATH" per
 * directory and symlink) that is applied with touch -h and removed.
 */
const MTIMES_NAME = ".banger-cp-mtimes";
const EXTRACT_REMOTE = [
  `fix() { m="$1/${MTIMES_NAME}"; [ -f "$m" ] || return 0; while IFS= read -r l; do touch -h -d "@\${l%% *}" "$1/\${l#* }" 2>/dev/null || :; done < "$m"; rm -f "$m"; }`,
  'd=$1',
  'if [ -d "$d" ]; then tar -x -o -f - -C "$d" || exit; fix "$d"; exit 0; fi',
  'p=$(dirname "$d")',
  '[ -d "$p" ] || { echo "banger: $p: no such directory in the VM" >&2; exit 2; }',
  't=$(mktemp -d "$p/.banger-cp.XXXXXX") || exit 1',
  'tar -x -o -f - -C "$t" && fix "$t" && mv -f "$t/$2" "$d"; s=$?',
  'rm -rf "$t"',
  'exit $s',
].join("\n");

const CREATE_REMOTE = [
  '[ -e "$1" ] || [ -L "$1" ] || { echo "banger: $1: no such file or directory in the VM" >&2; exit 2; }',
  'exec tar -c -f - -C "$(dirname "$1")" "./$(basename "$1")"',
].join("\n");

/** Host → guest. `src` "-" reads a tar stream from stdin, extracted into the guest directory `dst`. */
export async function copyIn(ssh: SshPrefix, src: string, dst: string, progress?: CopyProgress): Promise<void> {
  const rdst = remotePath(dst);
  if (src === "-") {
    const script = 'mkdir -p "$1" && exec tar -x -o -f - -C "$1"';
    await runPair(undefined, [...ssh, "--", q(["sh", "-c", script, "sh", rdst])], "inherit", "ignore");
    return;
  }
  const abs = resolve(src);
  try {
    lstatSync(abs);
  } catch {
    throw new Error(`${src}: no such file or directory here`);
  }
  const name = lastName(abs);
  const side = mkdtempSync(join(tmpdir(), "banger-cp-"));
  try {
    writeFileSync(join(side, MTIMES_NAME), mtimeLines(abs, `./${name}`).reverse().join(""), { mode: 0o600 });
    const hostTar = ["tar", "-c", "-f", "-", "-C", dirname(abs), `./${name}`, "-C", side, `./${MTIMES_NAME}`];
    const remote = [...ssh, "--", q(["sh", "-c", EXTRACT_REMOTE, "sh", rdst, name])];
    await runPair(hostTar, remote, "producer", "ignore", progress === undefined ? undefined : { out: progress, total: treeBytes(abs), field: "rchar" });
  } finally {
    rmSync(side, { recursive: true, force: true });
  }
}

/** "SECONDS PATH\n" for every directory and symlink under p (a path with a newline in it keeps the guest tar's mtime). */
function mtimeLines(p: string, rel: string): string[] {
  const st = lstatSync(p);
  const own = (st.isDirectory() || st.isSymbolicLink()) && !rel.includes("\n") ? [`${Math.floor(st.mtimeMs / 1000)} ${rel}\n`] : [];
  if (!st.isDirectory()) return own;
  return [...own, ...readdirSync(p).flatMap((e) => mtimeLines(join(p, e), `${rel}/${e}`))];
}

/** Guest → host. `dst` "-" writes the tar stream to stdout. */
export async function copyOut(ssh: SshPrefix, src: string, dst: string, progress?: CopyProgress): Promise<void> {
  const rsrc = remotePath(src);
  const name = lastName(rsrc);
  const remote = [...ssh, "--", q(["sh", "-c", CREATE_REMOTE, "sh", rsrc])];
  if (dst === "-") {
    await runPair(undefined, remote, "ignore", "inherit");
    return;
  }
  const abs = resolve(dst);
  const into = isDir(abs);
  const parent = dirname(abs);
  if (!into && !isDir(parent)) throw new Error(`${parent}: no such directory here; create it first`);
  // Extracted beside DST and renamed into place: a failed copy leaves no partial DST behind.
  const tmp = into ? undefined : mkdtempSync(join(parent, ".banger-cp-"));
  try {
    const hostTar = ["tar", "-x", "-p", "--no-same-owner", "-f", "-", "-C", tmp ?? abs];
    await runPair(hostTar, remote, "consumer", "ignore", progress === undefined ? undefined : { out: progress, total: undefined, field: "wchar" });
    if (tmp !== undefined) renameSync(join(tmp, name), abs);
  } finally {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Bytes of regular files under p (lstat: symlinks are copied as links), for the progress line. */
function treeBytes(p: string): number {
  const st = lstatSync(p);
  if (st.isDirectory()) return readdirSync(p).reduce((n, e) => n + treeBytes(join(p, e)), 0);
  return st.isFile() ? st.size : 0;
}

interface ProgressSpec {
  readonly out: CopyProgress;
  readonly total: number | undefined;
  /** Which /proc/PID/io counter of the host tar counts the copy: what it read (creating) or wrote (extracting). */
  readonly field: "rchar" | "wchar";
}

interface Finished {
  readonly argv: readonly string[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: () => string;
}

/**
 * Runs `host` tar and the ssh `remote` joined stdout→stdin (host producing
 * when `hostRole` is "producer", consuming when "consumer"); with no host tar,
 * ssh's stdin/stdout are ours as given. Resolves when both exit 0; otherwise
 * rejects with the first failure that explains itself (the guest's, usually).
 */
async function runPair(host: readonly string[] | undefined, remote: readonly string[], hostRole: "producer" | "consumer" | "inherit" | "ignore", remoteOut: "inherit" | "ignore", progress?: ProgressSpec): Promise<void> {
  if (host === undefined) {
    const stdio: StdioOptions = [hostRole === "inherit" ? "inherit" : "ignore", remoteOut, "pipe"];
    const r = await finished(start(remote, stdio));
    if (r.code !== 0) throw failure(r);
    return;
  }
  let first: ChildProcess;
  let second: ChildProcess;
  let tar: ChildProcess;
  if (hostRole === "producer") {
    first = tar = start(host, ["ignore", "pipe", "pipe"]);
    second = start(remote, [required(first.stdout), "ignore", "pipe"]);
  } else {
    first = start(remote, ["ignore", "pipe", "pipe"]);
    second = tar = start(host, [required(first.stdout), "ignore", "pipe"]);
  }
  // The second child holds its own copy of the pipe; ours would keep it open (no EPIPE, no EOF).
  first.stdout?.destroy();
  const stop = progress === undefined ? undefined : showProgress(tar, progress);
  try {
    const [a, b] = await Promise.all([finished(first), finished(second)]);
    const results = hostRole === "producer" ? [b, a] : [a, b];
    for (const r of results) if (r.code !== 0) throw failure(r);
  } finally {
    stop?.();
  }
}

function required<T>(v: T | null | undefined): T {
  if (v === null || v === undefined) throw new Error("child pipe missing");
  return v;
}

function start(argv: readonly string[], stdio: StdioOptions): ChildProcess {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("empty argv");
  return spawn(file, args, { stdio, shell: false });
}

/** Keeps the last 16 KiB of stderr: enough for the message, bounded whatever a child prints. */
function finished(child: ChildProcess): Promise<Finished> {
  const argv = child.spawnargs;
  let err = "";
  child.stderr?.on("data", (d: Buffer) => { err = (err + d.toString("utf8")).slice(-16384); });
  return new Promise((res) => {
    let startError: Error | undefined;
    child.on("error", (e) => { startError = e; });
    child.on("close", (code, signal) => {
      res({ argv, code: startError !== undefined ? null : code, signal, stderr: () => (startError !== undefined ? `${startError.message}; install ${argv[0] ?? "it"}` : err) });
    });
  });
}

/** The side's own words first (the whole argv, with the script, stays in the cause). */
function failure(r: Finished): Error {
  const stderr = r.stderr().split("\n").filter((l) => l.trim() !== "").join("\n");
  const cause = new CommandError(r.argv, r.code, r.signal, "", stderr);
  const side = r.argv[0] === "tar" ? "tar on this host" : "the VM's side (over ssh)";
  const how = r.signal !== null ? `killed by ${r.signal}` : r.code !== null ? `exit code ${r.code}` : "could not start";
  return new Error(`copy failed: ${side}, ${how}${stderr !== "" ? `: ${stderr}` : ""}`, { cause });
}

function showProgress(tar: ChildProcess, p: ProgressSpec): () => void {
  const t0 = Date.now();
  const mib = (n: number): string => (n / 1048576).toFixed(1);
  let last = 0;
  const tick = (): void => {
    if (tar.pid === undefined) return;
    try {
      const m = new RegExp(`^${p.field}: ([0-9]+)$`, "m").exec(readFileSync(`/proc/${tar.pid}/io`, "utf8"));
      if (m?.[1] !== undefined) last = Number(m[1]);
    } catch {
      // tar has exited; the last figure stands.
    }
    const rate = last / 1048576 / Math.max(0.001, (Date.now() - t0) / 1000);
    p.out.write(`\r${mib(last)} MiB${p.total !== undefined ? ` of ${mib(p.total)} MiB` : ""}, ${rate.toFixed(1)} MiB/s   `);
  };
  const timer = setInterval(tick, 250);
  return () => {
    clearInterval(timer);
    tick();
    p.out.write("\n");
  };
}
