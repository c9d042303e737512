import { closeSync, constants, fchmodSync, fstatSync, readlinkSync, type Stats } from "node:fs";
import { isAbsolute, normalize, sep } from "node:path";
import { hasControlChars } from "../../model/text.js";
import { RpcError } from "../../rpc/errors.js";
import { AT_FDCWD, dirfdCalls, O_PATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS } from "../../system/dirfd-calls.js";

/**
 * A directory the helper manages on the owner's behalf (the state dir, the
 * runtime dir), opened ONCE at start and used only through its descriptor:
 * replacing the directory (or a parent) with a symlink afterwards changes
 * nothing the helper does, and a request path is only ever resolved beneath
 * this descriptor (beneath.ts).
 */
export interface ManagedRoot {
  /** What the flags named; request paths are matched against it as strings only. */
  readonly path: string;
  /** O_PATH descriptor of the directory, held for the helper's lifetime. */
  readonly fd: number;
  readonly stat: Stats;
}

/**
 * Where `root` really is now, read from its descriptor: for comparing with
 * paths the kernel reports (a loop's backing file), never for opening.
 * Renaming the directory or a parent changes the answer, not which
 * directory it describes.
 */
export function realPathOf(root: ManagedRoot): string {
  return readlinkSync(`/proc/self/fd/${root.fd}`);
}

/** Thrown when the helper must not start; the message names the file and the rule it breaks. */
export class TrustError extends Error {}

/**
 * Open `path` as a managed root. No component may be a symlink (resolved
 * with RESOLVE_NO_SYMLINKS from the real /, so a symlink planted anywhere on
 * the way is refused, not followed), and the directory itself must be owned
 * by root or by the owner: anyone else could rename things inside it.
 */
export function openManagedRoot(label: string, path: string, ownerUid: number): ManagedRoot {
  return openChecked(label, path, ownerUid, O_PATH);
}

function openChecked(label: string, path: string, ownerUid: number, access: number): ManagedRoot {
  if (!isAbsolute(path) || normalize(path) !== path || (path.endsWith(sep) && path !== sep)) throw new TrustError(`${label} ${path}: must be an absolute, normalized path`);
  let fd: number;
  try {
    fd = dirfdCalls().openat2(AT_FDCWD, path, access | constants.O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new TrustError(`${label} ${path}: a component of the path is a symlink; a managed root must be reached without symlinks`);
    if (code === "ENOTDIR") throw new TrustError(`${label} ${path}: is not a directory`);
    throw new TrustError(`${label} ${path}: cannot open: ${code ?? String(e)}`);
  }
  const stat = fstatSync(fd);
  if (stat.uid !== 0 && stat.uid !== ownerUid) {
    closeSync(fd);
    throw new TrustError(`${label} ${path}: is owned by uid ${stat.uid}; a managed root must be owned by root or the owner (uid ${ownerUid})`);
  }
  return { path, fd, stat };
}

/**
 * A directory of root's own (the VMMs' run directories), which the helper
 * made: reached with no symlink on the way, owned by root, and then given
 * `mode` through its descriptor (never chmod by name: a symlink planted in
 * its place would hand root's chmod to its target), so nobody else can
 * write in it. The descriptor is O_RDONLY, not O_PATH, for that fchmod.
 */
export function openRootOnlyDir(label: string, path: string, mode: number): ManagedRoot {
  const root = openChecked(label, path, 0, constants.O_RDONLY);
  fchmodSync(root.fd, mode);
  return { ...root, stat: fstatSync(root.fd) };
}

/**
 * The part of a request path below `root`, as a string check only (absolute,
 * normalized, no `..`, no control characters): what it names is decided by
 * openat2 beneath the root's descriptor, never by a lookup of this string.
 */
export function relativeTo(field: string, value: string, root: ManagedRoot): string {
  const bad = (why: string): RpcError => new RpcError("bad_params", `${field}: ${why}`);
  if (value.length === 0 || value.length > 4096) throw bad("path is empty or too long");
  if (hasControlChars(value)) throw bad("path contains control characters");
  if (!isAbsolute(value)) throw bad(`${JSON.stringify(value)} must be absolute`);
  if (normalize(value) !== value || value.endsWith(sep) || value.split(sep).includes("..")) throw bad(`${JSON.stringify(value)} is not a normalized path`);
  if (!value.startsWith(root.path + sep)) throw bad(`${JSON.stringify(value)} is outside ${root.path}`);
  return value.slice(root.path.length + 1);
}
