import { closeSync, constants, fchmodSync, fchownSync, fstatSync } from "node:fs";
import { RpcError } from "../../rpc/errors.js";
import { AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, dirfdCalls } from "../../system/dirfd-calls.js";
import { RESOLVE } from "../fs/beneath.js";
import type { ManagedRoot } from "../fs/managed-root.js";
import { removeTree } from "../fs/remove-tree.js";
import type { Held } from "./spec-files.js";

/** What goes into a jail: a name in its root, and the verified descriptor it is made from. */
export interface JailEntry {
  readonly name: string;
  readonly source: Held;
}

const S_IFBLK = 0o060000;

/**
 * Open (creating when missing) each directory of `names` beneath `root`,
 * one level at a time: each must be a directory owned by root (the owner
 * must not be able to rename inside the jail's parents), kept 0711 (only
 * traversable: nobody but root lists or changes them). Returns the last one.
 */
function rootOwnedDirs(startFd: number, label: string, names: readonly string[]): number {
  const calls = dirfdCalls();
  let fd = startFd;
  for (const name of names) {
    try {
      calls.mkdirat(fd, name, 0o711);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const next = calls.openat2(fd, name, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW, 0, RESOLVE);
    if (fd !== startFd) closeSync(fd);
    fd = next;
    const st = fstatSync(fd);
    if (st.uid !== 0) {
      closeSync(fd);
      throw new RpcError("bad_params", `jail: ${label}/${name} is owned by uid ${st.uid}, not root; remove it so the helper can recreate it`);
    }
    fchmodSync(fd, 0o711);
  }
  return fd;
}

/**
 * The seeds' jail for one VM, <jail dir>/<exec>/<vmId>/root, staged by
 * descriptor beneath the jail dir (vmm.jail_dir, root's all the way down),
 * after removeJailTree has removed any previous one. The
 * chroot is filled while it is still root's and 0700 (so the owner can
 * swap nothing inside it), with hard links made from the verified
 * descriptors (linkat AT_EMPTY_PATH: exactly the inode that was checked)
 * and block nodes made from the verified device's own rdev; only then are
 * the nodes and the chroot handed to the owner. Hard links are never
 * chowned: that would chown the original inode.
 */
export function stageJail(root: ManagedRoot, execName: string, vmId: string, entries: readonly JailEntry[], owner: { uid: number; gid: number }): void {
  const calls = dirfdCalls();
  const execFd = rootOwnedDirs(root.fd, root.path, [execName]);
  let vmFd: number | undefined;
  let chrootFd: number | undefined;
  try {
    vmFd = rootOwnedDirs(execFd, `${root.path}/${execName}`, [vmId]);
    // EEXIST when a previous jail is still there: removeJailTree comes first.
    calls.mkdirat(vmFd, "root", 0o700);
    chrootFd = calls.openat2(vmFd, "root", constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW, 0, RESOLVE);
    for (const e of entries) {
      if (e.source.stat.isBlockDevice()) {
        calls.mknodat(chrootFd, e.name, S_IFBLK | 0o600, BigInt(e.source.stat.rdev));
        calls.fchownat(chrootFd, e.name, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
      } else {
        try {
          calls.linkat(e.source.fd, "", chrootFd, e.name, AT_EMPTY_PATH);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EXDEV") throw new RpcError("operation_failed", `cannot hard-link ${e.name} into the jail: the state dir and vmm.jail_dir ${root.path} are on different filesystems; set vmm.jail_dir to a root-owned directory on the state dir's filesystem, or vmm.jailer = "never"`);
          throw err;
        }
      }
    }
    fchownSync(chrootFd, owner.uid, owner.gid);
  } finally {
    for (const fd of [chrootFd, vmFd, execFd]) if (fd !== undefined) closeSync(fd);
  }
}

/** Remove a VM's jail (<jail dir>/<exec>/<vmId>) by descriptor; whether it existed. */
export function removeJailTree(root: ManagedRoot, execName: string, vmId: string): boolean {
  let execFd: number;
  try {
    execFd = dirfdCalls().openat2(root.fd, execName, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW, 0, RESOLVE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw new RpcError("bad_params", `jail: ${root.path}/${execName} cannot be opened beneath the jail dir: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return removeTree(execFd, vmId);
  } finally {
    closeSync(execFd);
  }
}
