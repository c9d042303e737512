import { closeSync, constants, fstatSync, type Stats } from "node:fs";
import { HELPER_VM_LEAVES } from "../../paths/paths.js";
import { dirfdCalls, O_PATH } from "../../system/dirfd-calls.js";
import { RESOLVE, named, openBeneath, openOwnedLog, openParent, openRegular, removeStale, createExclusive, type Named } from "../fs/beneath.js";
import { openDmDevice } from "../fs/dm-device.js";
import type { ManagedRoot } from "../fs/managed-root.js";
import type { HelperEnv } from "../env.js";

/** A socket a VMM binds: a verified directory, the name in it, and where that is for messages. */
export interface VmmSocket {
  readonly n: Named;
  readonly dirFd: number;
  readonly leaf: string;
}

/** The root-owned directory of one launch's VMM (LaunchFiles.runDir). */
export interface RunDir {
  readonly fd: number;
  /** The path of an entry, for messages and for what a launch reports. */
  path(leaf: string): string;
  named(field: string, leaf: string): Named;
  /** A socket the VMM binds in this directory. */
  socket(field: string, leaf: string): VmmSocket;
}

/** An open descriptor and what fstat said about it when it was checked. */
export interface Held {
  readonly fd: number;
  readonly stat: Stats;
}

/**
 * The descriptors of one launch, opened before anything runs: the caller
 * hands them to the VMM and closes them all (close()) whatever happens.
 */
export class LaunchFiles {
  private readonly open: number[] = [];
  /** What this launch created or had the VMM bind, to remove when it fails: a verified directory and a name in it. */
  private readonly made: { readonly dirFd: number; readonly leaf: string; readonly kind: (st: Stats) => boolean }[] = [];
  /** The VM whose root-owned run directory this launch made. */
  private runDirOf: string | undefined;

  constructor(private readonly env: HelperEnv) {}

  /** A descriptor opened elsewhere for this launch, closed with the rest. */
  hold(fd: number): void {
    this.open.push(fd);
  }

  private keep<T extends Held | number>(h: T): T {
    this.open.push(typeof h === "number" ? h : h.fd);
    return h;
  }

  /** A kernel or initrd: the owner's regular file beneath the state dir, read-only (other VMs' jails may link it). */
  image(field: string, path: string): Held {
    return this.keep(openRegular(named(field, path, this.env.roots.state), "read", { uid: this.env.ownerUid, linked: true }));
  }

  /** A disk: the owner's regular file beneath the state dir, or its own banger dm snapshot device. */
  disk(field: string, path: string): Held {
    if (path.startsWith("/dev/")) return this.keep(openDmDevice(field, path, "readwrite", this.env.roots.state));
    return this.keep(openRegular(named(field, path, this.env.roots.state), "readwrite", { uid: this.env.ownerUid }));
  }

  /** A log the VMM writes and the owner reads, beneath the state dir (openOwnedLog's rules). */
  log(field: string, path: string): number {
    return this.keep(openOwnedLog(named(field, path, this.env.roots.state), { uid: this.env.ownerUid, gid: this.env.ownerGid }));
  }

  /**
   * The root-owned directory of this launch's VMM (vmm-run-dirs.ts), fresh:
   * its pidfile is created here, and its sockets are bound here. Removed
   * again, whole, when the launch fails.
   */
  runDir(vmId: string): RunDir {
    const dirs = this.env.vmmRunDirs;
    const fd = this.keep(dirs.fresh(vmId));
    this.runDirOf = vmId;
    return {
      fd,
      path: (leaf) => dirs.path(vmId, leaf),
      named: (field, leaf) => dirs.named(field, vmId, leaf),
      socket: (field, leaf) => ({ n: dirs.named(field, vmId, leaf), dirFd: fd, leaf }),
    };
  }

  /** The pidfile in the launch's directory: created (O_EXCL) root-owned and 0644, so the owner's daemon can read it by name. */
  pidFile(run: RunDir): number {
    return this.keep(createExclusive(run.named("pid_file", HELPER_VM_LEAVES.pidFile), 0o644));
  }

  /**
   * A unix socket the VMM will bind beneath `root` (a jailed Firecracker's
   * API socket, inside its jail): a leftover socket is removed, and the
   * directory is kept as a verified descriptor for the helper's waits and
   * connects.
   */
  socket(field: string, path: string, root: ManagedRoot): VmmSocket {
    const n = named(field, path, root);
    removeStale(n, (st) => st.isSocket());
    const { dirFd, leaf } = openParent(n);
    this.made.push({ dirFd: this.keep(dirFd), leaf, kind: (st) => st.isSocket() });
    return { n, dirFd, leaf };
  }

  /** After a failed launch: remove the launch's directory and the sockets it had bound elsewhere, by name in their verified directories only. */
  discard(): void {
    if (this.runDirOf !== undefined) {
      try {
        this.env.vmmRunDirs.remove(this.runDirOf);
      } catch {
        // reported by the next launch or cleanup of this VM, which removes it again
      }
    }
    for (const m of this.made.splice(0)) {
      try {
        const fd = dirfdCalls().openat2(m.dirFd, m.leaf, O_PATH | constants.O_NOFOLLOW, 0, RESOLVE);
        const st = fstatSync(fd);
        closeSync(fd);
        if (m.kind(st)) dirfdCalls().unlinkat(m.dirFd, m.leaf, 0);
      } catch {
        // already gone, or replaced by something that is not ours to remove
      }
    }
  }

  close(): void {
    for (const fd of this.open.splice(0)) closeSync(fd);
  }
}

/**
 * The socket a VMM bound at `leaf` in the verified directory, as an O_PATH
 * descriptor the helper connects through (`/proc/self/fd/N`): the owner may
 * replace the name by a symlink to some other root socket afterwards, but the
 * helper never connects by name. `uid`: who bound it (root for a root VMM, the
 * owner for a jailed one), so a socket the owner slipped in first is not
 * taken for the VMM's. Undefined while there is no such socket yet.
 */
export function boundSocket(n: Named, dirFd: number, leaf: string, uid: number): number | undefined {
  let fd: number;
  try {
    fd = openBeneath(n, dirFd, leaf, O_PATH | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  const st = fstatSync(fd);
  if (st.isSocket() && st.uid === uid) return fd;
  closeSync(fd);
  return undefined;
}

/** Whether `leaf` in the verified directory is a socket now (the VMM has bound it). */
export function socketBound(n: Named, dirFd: number, leaf: string): boolean {
  let fd: number;
  try {
    fd = openBeneath(n, dirFd, leaf, O_PATH | constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    return fstatSync(fd).isSocket();
  } finally {
    closeSync(fd);
  }
}
