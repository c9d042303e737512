import { closeSync, writeSync } from "node:fs";
import { posix } from "node:path";
import { hasControlChars } from "../../model/text.js";
import { errnoError, libc } from "../../system/libc.js";
import { CommandError, type Runner } from "../../system/runner.js";

/**
 * Edits of ext4 images WITHOUT mounting them (no loop mount, no root needed
 * for images the caller owns): e2fsprogs' debugfs, driven by a command script
 * on stdin. debugfs parses its scripts itself (ss library: whitespace splits,
 * double quotes group), so every path is double-quoted and any path that
 * could break out of the quotes (a quote, backslash, newline, control char) is
 * refused instead of escaped: there is no escaping we could get subtly wrong.
 */

export interface Ext4File {
  /** Absolute path inside the filesystem. */
  readonly path: string;
  readonly data: Buffer | string;
  /** Permission bits (e.g. 0o600); the file type bits are added here. */
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}

export interface Ext4Dir {
  readonly path: string;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}

export interface Ext4Stat {
  readonly type: string;
  /** Permission bits only (e.g. 0o600). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
}

const MAX_GUEST_PATH = 1024;

/**
 * The image to edit: a path, or a descriptor already open on it (with a
 * name for messages). A descriptor reaches debugfs as its fd 3, named
 * /proc/self/fd/3, so debugfs never looks the image up by name: the root
 * helper's way of editing exactly the inode it checked.
 */
export type Ext4Image = string | { readonly fd: number; readonly name: string };


/** Throws unless `p` is a guest path we can put into a debugfs script verbatim. */
export function checkGuestPath(p: string): string {
  if (p.length === 0 || p.length > MAX_GUEST_PATH) throw new Error(`guest path ${JSON.stringify(p)} is empty or too long`);
  if (!p.startsWith("/")) throw new Error(`guest path ${JSON.stringify(p)} must be absolute`);
  // debugfs' parser gives meaning to quotes and backslashes; newlines would start a new command.
  if (/["\\]/.test(p) || hasControlChars(p)) throw new Error(`guest path ${JSON.stringify(p)} contains a quote, backslash or control character; rename it`);
  if (posix.normalize(p) !== p || (p !== "/" && p.endsWith("/")) || p.split("/").includes("..")) {
    throw new Error(`guest path ${JSON.stringify(p)} is not a normalized absolute path`);
  }
  return p;
}

function checkMode(mode: number, what: string): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new Error(`${what}: mode ${mode} is not a permission mode (0..07777)`);
  return mode;
}

function checkId(id: number | undefined, what: string): number {
  const v = id ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > 0xfffffffe) throw new Error(`${what}: ${v} is not a valid uid/gid`);
  return v;
}

function q(p: string): string {
  return `"${p}"`;
}

/** "/a/b/c" -> ["/a", "/a/b"]. */
function parentsOf(p: string): string[] {
  const parts = p.split("/").filter((x) => x !== "");
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push("/" + parts.slice(0, i).join("/"));
  return out;
}

/**
 * debugfs reports failures on stderr and keeps going (its exit status only
 * reflects the last command), so we read stderr. These lines are the
 * expected outcomes of our idempotent `mkdir` (already there) and `rm`
 * (nothing to remove) steps; any other line is a real failure.
 */
const BENIGN_STDERR = [
  /^debugfs \d+\.\d+/,
  /^ext2fs_mkdir: Ext2 directory already exists while creating directory /,
  /^mkdir: Ext2 directory already exists\s*$/,
  /^rm: File not found by ext2_lookup while trying to resolve filename\s*$/,
];

function stderrProblems(stderr: string): string[] {
  return stderr
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l !== "" && !BENIGN_STDERR.some((re) => re.test(l)));
}

/**
 * Writes files (and creates directories, mkdir -p style) in one debugfs run.
 * Existing files at the target paths are replaced. Missing parents are
 * created 0755 root:root; `dirs` lets the caller choose mode/owner of
 * specific directories (e.g. /.ssh 0700), applied whether or not they existed.
 */
export async function writeExt4Files(runner: Runner, image: Ext4Image, files: readonly Ext4File[], dirs: readonly Ext4Dir[] = []): Promise<void> {
  for (const f of files) {
    checkGuestPath(f.path);
    if (f.path === "/") throw new Error("cannot write a file at /");
    checkMode(f.mode, f.path);
    checkId(f.uid, f.path);
    checkId(f.gid, f.path);
  }
  for (const d of dirs) {
    checkGuestPath(d.path);
    checkMode(d.mode, d.path);
    checkId(d.uid, d.path);
    checkId(d.gid, d.path);
  }
  if (files.length === 0 && dirs.length === 0) return;

  const imageFds = typeof image === "string" ? [] : [image.fd];
  const imagePath = typeof image === "string" ? image : image.name;
  const target = typeof image === "string" ? image : "/proc/self/fd/3";
  // Each file's bytes reach debugfs as an inherited in-memory file (/proc/self/fd/N): no temp
  // files on the host, so no key material on a host disk and no inode churn per VM.
  const fds: number[] = [];
  try {
    const lines: string[] = [];
    const explicitDirs = new Map(dirs.map((d) => [d.path, d]));
    const made = new Set<string>();
    const mkdirP = (dir: string): void => {
      for (const p of [...parentsOf(dir), dir]) {
        if (made.has(p) || p === "/") continue;
        made.add(p);
        lines.push(`mkdir ${q(p)}`);
        // Only directories we were told about get their mode/owner forced;
        // pre-existing parents like /etc keep theirs.
        const d = explicitDirs.get(p);
        if (d !== undefined) {
          lines.push(`sif ${q(p)} mode 0${(0o040000 | d.mode).toString(8)}`, `sif ${q(p)} uid ${checkId(d.uid, p)}`, `sif ${q(p)} gid ${checkId(d.gid, p)}`);
        }
      }
    };
    for (const d of dirs) mkdirP(d.path);
    for (const f of files) {
      for (const p of parentsOf(f.path)) mkdirP(p);
      const fd = memoryFile(f.data);
      fds.push(fd);
      lines.push(
        `rm ${q(f.path)}`,
        `write /proc/self/fd/${2 + imageFds.length + fds.length} ${q(f.path)}`,
        `sif ${q(f.path)} mode 0${(0o100000 | f.mode).toString(8)}`,
        `sif ${q(f.path)} uid ${checkId(f.uid, f.path)}`,
        `sif ${q(f.path)} gid ${checkId(f.gid, f.path)}`,
      );
    }
    const script = lines.join("\n") + "\n";
    let stderr: string;
    try {
      stderr = (await runner.run(["debugfs", "-w", "-f", "-", target], { stdin: script, okExitCodes: [1], timeoutMs: 120_000, extraFds: [...imageFds, ...fds] })).stderr.toString("utf8");
    } catch (e) {
      throw new Error(`debugfs could not edit ${imagePath}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const problems = stderrProblems(stderr);
    if (problems.length > 0) throw new Error(`debugfs failed to write into ${imagePath}: ${problems.join(" | ")}`);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

function memoryFile(data: Buffer | string): number {
  const fd = libc().memfdCreate("banger-ext4-file");
  if (fd < 0) throw errnoError("memfd_create", libc().errno());
  try {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/** Reads one file out of an ext4 image. Throws if it does not exist. */
export async function readExt4File(runner: Runner, imagePath: string, guestPath: string): Promise<Buffer> {
  checkGuestPath(guestPath);
  // `cat` of a missing file prints to stderr and exits 0 with no output, so
  // stat first: it distinguishes "missing" from "empty".
  await statExt4(runner, imagePath, guestPath);
  const { stdout, stderr } = await runner.run(["debugfs", "-R", `cat ${q(guestPath)}`, imagePath], { timeoutMs: 120_000 });
  const problems = stderrProblems(stderr.toString("utf8"));
  if (problems.length > 0) throw new Error(`debugfs could not read ${guestPath} from ${imagePath}: ${problems.join(" | ")}`);
  return stdout;
}

/** Reads a file if present; undefined when it does not exist. */
export async function readExt4FileIfExists(runner: Runner, imagePath: string, guestPath: string): Promise<Buffer | undefined> {
  try {
    return await readExt4File(runner, imagePath, guestPath);
  } catch (e) {
    if (e instanceof Ext4NotFoundError) return undefined;
    throw e;
  }
}

export class Ext4NotFoundError extends Error {
  constructor(imagePath: string, guestPath: string) {
    super(`${guestPath} does not exist in ${imagePath}`);
    this.name = "Ext4NotFoundError";
  }
}

/** Type, permission bits, owner and size of one inode, parsed from `debugfs -R stat`. */
export async function statExt4(runner: Runner, imagePath: string, guestPath: string): Promise<Ext4Stat> {
  checkGuestPath(guestPath);
  let out: string;
  let err: string;
  try {
    const r = await runner.run(["debugfs", "-R", `stat ${q(guestPath)}`, imagePath], { timeoutMs: 120_000 });
    out = r.stdout.toString("utf8");
    err = r.stderr.toString("utf8");
  } catch (e) {
    if (e instanceof CommandError) throw new Error(`debugfs could not open ${imagePath}: ${e.message}`, { cause: e });
    throw e;
  }
  if (/File not found by ext2_lookup/.test(err)) throw new Ext4NotFoundError(imagePath, guestPath);
  return parseDebugfsStat(out, `${imagePath}:${guestPath}`);
}

export function parseDebugfsStat(out: string, what: string): Ext4Stat {
  const m1 = /Type:\s+(\S+)\s+Mode:\s+([0-7]+)/.exec(out);
  const m2 = /User:\s+(\d+)\s+Group:\s+(\d+)(?:\s+Project:\s+\d+)?\s+Size:\s+(\d+)/.exec(out);
  if (m1 === null || m2 === null) throw new Error(`cannot parse debugfs stat output for ${what}`);
  return { type: m1[1] ?? "", mode: parseInt(m1[2] ?? "0", 8), uid: Number(m2[1]), gid: Number(m2[2]), size: Number(m2[3]) };
}
