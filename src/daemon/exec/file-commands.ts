import type { FileEntry } from "../../rpc/daemon/exec.js";
import type { ExitStatus } from "../../rpc/frames.js";

/**
 * The file methods as guest commands run over exec channels: the tiny image
 * has no sftp-server, and busybox's cat/rm/stat are on every image. Each is an
 * argv of fixed scripts whose only variable parts are positional parameters
 * ("$1"), so a path is never parsed as shell code on the guest either.
 * A missing path exits NOT_FOUND so the daemon can answer not_found.
 */
export const NOT_FOUND_EXIT = 44;
const MISSING = `[ -e "$1" ] || [ -L "$1" ] || { echo "no such file or directory: $1" >&2; exit ${NOT_FOUND_EXIT}; }`;

export function readFileArgv(path: string): string[] {
  return ["sh", "-c", `${MISSING}; exec cat -- "$1"`, "sh", path];
}

/** Writes stdin to the file; an existing file keeps its mode unless one is given. */
export function writeFileArgv(path: string, mode: number | undefined): string[] {
  const chmod = mode === undefined ? "" : ` && chmod ${mode.toString(8)} -- "$1"`;
  return ["sh", "-c", `cat > "$1"${chmod}`, "sh", path];
}

export function removeFileArgv(path: string, recursive: boolean): string[] {
  return ["sh", "-c", `${MISSING}; exec rm ${recursive ? "-r -f" : "-f"} -- "$1"`, "sh", path];
}

/**
 * Lists a directory (or the path itself when it is not one): per entry, lstat's raw mode in hex,
 * size and mtime on one line, then the name ended by NUL (names may hold newlines, never NUL).
 */
export function listFilesArgv(path: string): string[] {
  const one = `stat -c '%f %s %Y' -- "$f" && printf '%s\\0' "$n"`;
  const script = [
    MISSING,
    `if [ -d "$1" ] && ! [ -L "$1" ]; then`,
    `  for f in "$1"/* "$1"/.*; do n=\${f##*/}; case $n in .|..) continue;; esac; { [ -e "$f" ] || [ -L "$f" ]; } || continue; ${one}; done`,
    `else f=$1; n=\${f##*/}; ${one}; fi`,
  ].join("\n");
  return ["sh", "-c", script, "sh", path];
}

const S_IFMT = 0o170000;
const TYPES: Readonly<Record<number, FileEntry["type"]>> = { 0o100000: "file", 0o040000: "dir", 0o120000: "symlink" };

/** Parses listFilesArgv's output; a record that does not parse is an error, not skipped. */
export function parseListing(out: string): FileEntry[] {
  const entries: FileEntry[] = [];
  for (const rec of out.split("\0")) {
    if (rec === "" || rec === "\n") continue;
    const nl = rec.indexOf("\n", rec.startsWith("\n") ? 1 : 0);
    const head = rec.slice(0, nl).trim();
    const name = rec.slice(nl + 1);
    const m = /^([0-9a-f]+) ([0-9]+) ([0-9]+)$/.exec(head);
    if (nl === -1 || m === null || name === "") throw new Error(`unexpected listing line ${JSON.stringify(rec.slice(0, 80))}`);
    const raw = parseInt(m[1] ?? "", 16);
    entries.push({ name, type: TYPES[raw & S_IFMT] ?? "other", size: Number(m[2]), mode: raw & 0o7777, mtime_ms: Number(m[3]) * 1000 });
  }
  return entries;
}

/** How a file command's failure reads to the client. */
export function fileFailure(what: string, vm: string) {
  return (status: ExitStatus, stderr: string): { code: string; message: string } => {
    const detail = stderr === "" ? `exit ${String(status.code ?? status.signal)}` : stderr.split("\n")[0] ?? "";
    if (status.code === NOT_FOUND_EXIT) return { code: "not_found", message: `${what} in ${vm}: ${detail}` };
    return { code: "operation_failed", message: `${what} in ${vm} failed: ${detail}` };
  };
}
