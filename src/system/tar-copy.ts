import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CommandError } from "./runner.js";

/**
 * `vm cp` as one tar stream to one guest command (the user's ssh here, an exec
 * channel through a context): the host's `tar` on one end, the guest's (busybox
 * or GNU) on the other, both keeping modes, mtimes and symlinks. The bytes flow
 * through streams that respect backpressure end to end, so memory stays flat
 * whatever the size. Every command is an argv array; remote paths
 * reach the guest's shell only as positional parameters of fixed scripts.
 */

/** A command running in the guest (an ssh process or the daemon's exec channel gives one). */
export interface RemoteProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exit: Promise<{ readonly code: number | null; readonly signal: string | null }>;
}

/** Starts argv in the guest; `stdin: false` gives it EOF at once. */
export type RemoteRun = (argv: readonly string[], opts: { readonly stdin: boolean }) => Promise<RemoteProcess>;

/**
 * The guest reached by a local process (the user's ssh): `argv(remote)` is its full command line.
 * Host tar and that process are then joined by one pipe, so no file data passes through node.
 */
export interface DirectRun {
  readonly argv: (remote: readonly string[]) => Promise<string[]>;
}

export type RemoteTarget = RemoteRun | DirectRun;

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
export async function copyIn(run: RemoteTarget, src: string, dst: string, progress?: CopyProgress): Promise<void> {
  const rdst = remotePath(dst);
  if (src === "-") {
    const script = 'mkdir -p "$1" && exec tar -x -o -f - -C "$1"';
    await runPair(run, undefined, ["sh", "-c", script, "sh", rdst], "inherit", "ignore");
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
    const remote = ["sh", "-c", EXTRACT_REMOTE, "sh", rdst, name];
    await runPair(run, hostTar, remote, "producer", "ignore", progress === undefined ? undefined : { out: progress, total: treeBytes(abs), field: "rchar" });
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
export async function copyOut(run: RemoteTarget, src: string, dst: string, progress?: CopyProgress): Promise<void> {
  const rsrc = remotePath(src);
  const name = lastName(rsrc);
  const remote = ["sh", "-c", CREATE_REMOTE, "sh", rsrc];
  if (dst === "-") {
    await runPair(run, undefined, remote, "ignore", "inherit");
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
    await runPair(run, hostTar, remote, "consumer", "ignore", progress === undefined ? undefined : { out: progress, total: undefined, field: "wchar" });
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
  readonly signal: string | null;
  readonly stderr: () => string;
  readonly remote: boolean;
}

/**
 * Runs `host` tar and the guest's `remote` command joined stdout→stdin (host
 * producing when `hostRole` is "producer", consuming when "consumer"); with no
 * host tar, the guest's stdin/stdout are this process's as given. Resolves
 * when both exit 0; otherwise rejects with the first failure that explains
 * itself (the guest's, usually).
 */
async function runPair(target: RemoteTarget, host: readonly string[] | undefined, remote: readonly string[], hostRole: "producer" | "consumer" | "inherit" | "ignore", remoteOut: "inherit" | "ignore", progress?: ProgressSpec): Promise<void> {
  if (typeof target !== "function") {
    await directPair(await target.argv(remote), host, hostRole, remoteOut, progress);
    return;
  }
  const run = target;
  const feeds = hostRole === "producer" || hostRole === "inherit";
  const rp = await run(remote, { stdin: feeds });
  const remoteDone = finishedRemote(remote, rp);
  if (host === undefined) {
    const flows = [hostRole === "inherit" ? pipeline(process.stdin, rp.stdin) : Promise.resolve(), remoteOut === "inherit" ? pipeline(rp.stdout, process.stdout, { end: false }) : drain(rp.stdout)];
    const r = await remoteDone;
    await Promise.allSettled(flows);
    if (hostRole === "inherit") process.stdin.destroy();
    if (r.code !== 0) throw failure(r);
    return;
  }
  const tar = start(host, [hostRole === "producer" ? "ignore" : "pipe", hostRole === "producer" ? "pipe" : "ignore", "pipe"]);
  const tarDone = finished(tar);
  const flow = hostRole === "producer" ? pipeline(required(tar.stdout), rp.stdin) : pipeline(rp.stdout, required(tar.stdin));
  if (hostRole === "producer") void drain(rp.stdout);
  const stop = progress === undefined ? undefined : showProgress(tar, progress);
  try {
    const [a, b] = await Promise.all([tarDone, remoteDone, flow.catch(() => undefined)]);
    // The guest's words explain a failure best (tar here usually just saw its pipe break).
    for (const r of [b, a]) if (r.code !== 0) throw failure(r);
  } finally {
    stop?.();
  }
}

/** runPair for a DirectRun: the two processes share the pipe between them; node only waits. */
async function directPair(remote: readonly string[], host: readonly string[] | undefined, hostRole: "producer" | "consumer" | "inherit" | "ignore", remoteOut: "inherit" | "ignore", progress?: ProgressSpec): Promise<void> {
  if (host === undefined) {
    const r = await finished(start(remote, [hostRole === "inherit" ? "inherit" : "ignore", remoteOut, "pipe"]), true);
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
    const [a, b] = await Promise.all([finished(first, hostRole !== "producer"), finished(second, hostRole === "producer")]);
    const results = hostRole === "producer" ? [b, a] : [a, b];
    for (const r of results) if (r.code !== 0) throw failure(r);
  } finally {
    stop?.();
  }
}

function drain(r: Readable): Promise<void> {
  r.resume();
  return new Promise((res) => { r.once("end", res).once("close", res); });
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
function finished(child: ChildProcess, remote = false): Promise<Finished> {
  const argv = child.spawnargs;
  let err = "";
  child.stderr?.on("data", (d: Buffer) => { err = (err + d.toString("utf8")).slice(-16384); });
  return new Promise((res) => {
    let startError: Error | undefined;
    child.on("error", (e) => { startError = e; });
    child.on("close", (code, signal) => {
      res({ argv, code: startError !== undefined ? null : code, signal, remote, stderr: () => (startError !== undefined ? `${startError.message}; install ${argv[0] ?? "it"}` : err) });
    });
  });
}

function finishedRemote(argv: readonly string[], rp: RemoteProcess): Promise<Finished> {
  let err = "";
  rp.stderr.on("data", (d: Buffer) => { err = (err + d.toString("utf8")).slice(-16384); });
  return rp.exit.then(
    async (st) => {
      await new Promise<void>((res) => { if (rp.stderr.readableEnded) res(); else rp.stderr.once("end", res).once("close", res); });
      return { argv, code: st.code, signal: st.signal, remote: true, stderr: () => err };
    },
    (e: unknown) => ({ argv, code: null, signal: null, remote: true, stderr: () => (e instanceof Error ? e.message : String(e)) }),
  );
}

/** The side's own words first (the whole argv, with the script, stays in the cause). */
function failure(r: Finished): Error {
  const stderr = r.stderr().split("\n").filter((l) => l.trim() !== "").join("\n");
  const cause = new CommandError(r.argv, r.code, r.signal as NodeJS.Signals | null, "", stderr);
  const side = r.remote ? "the VM's side" : "tar on this host";
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
