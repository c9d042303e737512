import { closeSync, constants, fchmodSync, fchownSync, fstatSync, openSync, type Stats } from "node:fs";
import { dirname, basename } from "node:path";
import { RpcError } from "../../rpc/errors.js";
import { dirfdCalls, O_PATH, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV } from "../../system/dirfd-calls.js";
import { relativeTo, type ManagedRoot } from "./managed-root.js";

/**
 * Opening what a request names, by descriptor only. Every lookup is
 * openat2 beneath a verified directory descriptor with no symlink, no magic
 * link and no mount crossing allowed on the way, so a component the owner
 * swaps for a symlink (or a bind mount) makes the call fail instead of
 * reaching elsewhere. What is found is judged by fstat of the descriptor
 * (type, owner, link count) and then used only through that descriptor.
 */

export const RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

export type Access = "read" | "readwrite" | "append";

const ACCESS_FLAGS: Record<Access, number> = {
  read: constants.O_RDONLY,
  readwrite: constants.O_RDWR,
  append: constants.O_WRONLY | constants.O_APPEND,
};

/** Where a request path leads: the root it is under, for messages, and its path below it. */
export interface Named {
  readonly field: string;
  readonly root: ManagedRoot;
  readonly rel: string;
}

export function named(field: string, value: string, root: ManagedRoot): Named {
  return { field, root, rel: relativeTo(field, value, root) };
}

function bad(n: Named, why: string): RpcError {
  return new RpcError("bad_params", `${n.field}: ${n.root.path}/${n.rel} ${why}`);
}

export function kindOf(st: Stats): string {
  if (st.isFile()) return "regular file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFIFO()) return "FIFO";
  if (st.isSocket()) return "socket";
  if (st.isBlockDevice()) return "block device";
  if (st.isCharacterDevice()) return "character device";
  return "special file";
}

/** openat2 beneath `dirFd`, with lookup failures turned into bad_params / not_found naming the field. */
export function openBeneath(n: Named, dirFd: number, rel: string, flags: number, mode = 0): number {
  try {
    return dirfdCalls().openat2(dirFd, rel, flags, mode, RESOLVE);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new RpcError("not_found", `${n.field}: ${n.root.path}/${n.rel} does not exist`);
    if (code === "ELOOP") throw bad(n, "is reached through a symlink; refusing to follow it");
    if (code === "EXDEV") throw bad(n, "is reached across a mount point or outside its root; refusing");
    throw bad(n, `cannot be opened: ${code ?? String(e)}`);
  }
}

/**
 * An O_PATH descriptor of the entry itself (a symlink leaf is refused by
 * RESOLVE_NO_SYMLINKS). O_PATH opens nothing: no FIFO blocks, no device
 * driver runs, whatever the entry turns out to be. `at`: an already verified
 * directory and the name in it, instead of the whole path from the root.
 */
export function openEntry(n: Named, at?: { dirFd: number; leaf: string }): { fd: number; stat: Stats } {
  const fd = at === undefined ? openBeneath(n, n.root.fd, n.rel, O_PATH | constants.O_NOFOLLOW) : openBeneath(n, at.dirFd, at.leaf, O_PATH | constants.O_NOFOLLOW);
  return { fd, stat: fstatSync(fd) };
}

/** The directory holding the entry `n` names, as an O_PATH descriptor, and the entry's own name. */
export function openParent(n: Named): { dirFd: number; leaf: string } {
  const parent = dirname(n.rel);
  const dirFd = parent === "." ? openBeneath(n, n.root.fd, ".", O_PATH | constants.O_DIRECTORY) : openBeneath(n, n.root.fd, parent, O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  return { dirFd, leaf: basename(n.rel) };
}

export interface RegularRule {
  /** The uid the file must belong to (the owner: root never edits root's own files for a request). */
  readonly uid: number;
  /**
   * Accept more than one link. Only for files the helper merely READS that
   * must be the owner's anyway (kernels, initrds): a jail holds a second link
   * to its VM's kernel while that VM runs, and a link to the owner's own
   * file gives nothing. Anything written to, or handed on writable, must
   * have exactly one.
   */
  readonly linked?: boolean;
}

/**
 * A regular file with exactly one link, owned by `rule.uid`, opened for
 * `access`. The type is judged on an O_PATH descriptor first, so a FIFO,
 * socket or device in its place is refused without being opened; the file
 * is then reopened through that descriptor's /proc/self/fd magic link, which
 * names the inode already checked, not a path. One link (unless
 * rule.linked): a hard link the owner made to someone else's file is refused.
 */
export function openRegular(n: Named, access: Access, rule: RegularRule, at?: { dirFd: number; leaf: string }): { fd: number; stat: Stats } {
  const entry = openEntry(n, at);
  try {
    checkRegular(n, entry.stat, rule);
    const fd = openSync(`/proc/self/fd/${entry.fd}`, ACCESS_FLAGS[access] | constants.O_NOCTTY | constants.O_NONBLOCK);
    return { fd, stat: fstatSync(fd) };
  } finally {
    closeSync(entry.fd);
  }
}

function checkRegular(n: Named, st: Stats, rule: RegularRule): void {
  if (!st.isFile()) throw bad(n, `is a ${kindOf(st)}, not a regular file`);
  if (st.nlink !== 1 && rule.linked !== true) throw bad(n, `has ${st.nlink} hard links; only a file with one link is accepted`);
  if (st.uid !== rule.uid) throw bad(n, `is owned by uid ${st.uid}, not uid ${rule.uid}`);
}

/**
 * A file the helper writes for the owner (a log): created fresh (O_EXCL in
 * the verified parent) and then handed over with fchown of that descriptor,
 * or, when it already exists, opened under openRegular's rules (the owner's
 * own single-link file). Never an existing file chowned.
 */
export function openOwnedLog(n: Named, owner: { uid: number; gid: number }): number {
  const { dirFd, leaf } = openParent(n);
  try {
    let fd: number;
    try {
      fd = dirfdCalls().openat2(dirFd, leaf, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600, RESOLVE);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw bad(n, `cannot be created: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      return openRegular(n, "append", { uid: owner.uid }, { dirFd, leaf }).fd;
    }
    fchownSync(fd, owner.uid, owner.gid);
    fchmodSync(fd, 0o640);
    return fd;
  } finally {
    closeSync(dirFd);
  }
}

/** A new root-owned file (a pidfile): exclusive create in the verified parent, mode set on the descriptor (the umask is 077). */
export function createExclusive(n: Named, mode: number): number {
  const { dirFd, leaf } = openParent(n);
  try {
    const fd = dirfdCalls().openat2(dirFd, leaf, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode, RESOLVE);
    fchmodSync(fd, mode);
    return fd;
  } catch (e) {
    if (e instanceof RpcError) throw e;
    throw bad(n, `cannot be created: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  } finally {
    closeSync(dirFd);
  }
}

/**
 * Remove a leftover entry of an expected kind (a stale pidfile, socket) from
 * its verified parent. unlinkat acts on the name inside that directory only
 * and never follows a symlink; something of another kind is left alone and
 * reported. Missing is fine.
 */
export function removeStale(n: Named, expect: (st: Stats) => boolean): void {
  let parent;
  try {
    parent = openParent(n);
  } catch (e) {
    if (e instanceof RpcError && e.code === "not_found") return;
    throw e;
  }
  try {
    let entry;
    try {
      entry = openEntry(n, parent);
    } catch (e) {
      if (e instanceof RpcError && e.code === "not_found") return;
      throw e;
    }
    closeSync(entry.fd);
    if (!expect(entry.stat)) throw bad(n, `exists and is a ${kindOf(entry.stat)}; refusing to remove it`);
    try {
      dirfdCalls().unlinkat(parent.dirFd, parent.leaf, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  } finally {
    closeSync(parent.dirFd);
  }
}
