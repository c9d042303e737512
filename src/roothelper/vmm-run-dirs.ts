import { closeSync, constants, fchmodSync, fstatSync } from "node:fs";
import { join } from "node:path";
import { RpcError } from "../rpc/errors.js";
import { dirfdCalls } from "../system/dirfd-calls.js";
import { RESOLVE, type Named } from "./fs/beneath.js";
import type { ManagedRoot } from "./fs/managed-root.js";
import { removeTree } from "./fs/remove-tree.js";

/**
 * What root creates for a VMM (its pidfile, the launch record, the control
 * socket root binds, an unjailed Firecracker's vsock socket) lives in a
 * directory per VM, <helper dir>/vm/<vm id>, beneath a root-owned directory
 * opened once at start (never in the owner's runtime dir, where the owner
 * could rename, unlink or plant entries). The helper picks every name from
 * the validated VM id; the directories are root's and 0711, so the owner can
 * read the 0644 pidfile by its name and nothing else, and can create, rename
 * or remove nothing in them.
 */
export class VmmRunDirs {
  constructor(readonly root: ManagedRoot) {}

  /** Where `leaf` of `vmId` is, for a field's messages and the paths a launch reports (never looked up by this name). */
  named(field: string, vmId: string, leaf: string): Named {
    return { field, root: this.root, rel: `${vmId}/${leaf}` };
  }

  path(vmId: string, leaf: string): string {
    return join(this.root.path, vmId, leaf);
  }

  /**
   * A fresh directory for a launch of `vmId` (the caller made sure no VMM of
   * it runs): whatever an earlier VMM left is removed first, by descriptor.
   * Returns a descriptor of the new directory; the caller closes it.
   */
  fresh(vmId: string): number {
    const calls = dirfdCalls();
    removeTree(this.root.fd, vmId);
    calls.mkdirat(this.root.fd, vmId, 0o711);
    const fd = calls.openat2(this.root.fd, vmId, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW, 0, RESOLVE);
    const st = fstatSync(fd);
    if (st.uid !== 0) {
      closeSync(fd);
      throw new RpcError("internal", `${this.root.path}/${vmId} is owned by uid ${st.uid} right after root created it`);
    }
    // mkdirat's mode is cut by the helper's umask (077); the owner must reach the pidfile inside.
    fchmodSync(fd, 0o711);
    return fd;
  }

  /** Remove the directory of `vmId` and everything in it, by descriptor; whether it existed. */
  remove(vmId: string): boolean {
    return removeTree(this.root.fd, vmId);
  }
}
