import { closeSync, constants, fchmodSync, fchownSync, fstatSync, openSync, readlinkSync, type Stats } from "node:fs";

export type OpenMode = "read" | "readwrite" | "append";

const FLAGS: Record<OpenMode, number> = {
  read: constants.O_RDONLY,
  readwrite: constants.O_RDWR,
  append: constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT,
};

/**
 * Open a path that was validated earlier, closing the check-then-use race:
 * the leaf is opened with O_NOFOLLOW, and the path the kernel ACTUALLY
 * resolved (readlink of /proc/self/fd/N) must equal the requested path, so a
 * directory component swapped for a symlink after validation is caught too.
 * The VMM is then handed the descriptor (as /proc/self/fd/N), never the path.
 * `allowLinkedDevice`: for /dev/mapper/* names, which are udev symlinks to
 * /dev/dm-N in root-owned /dev; only a block device is accepted then.
 */
export function openVerified(field: string, path: string, mode: OpenMode, opts: { allowLinkedDevice?: boolean; owner?: { uid: number; gid: number } | undefined } = {}): { fd: number; stat: Stats } {
  const linked = opts.allowLinkedDevice === true;
  let fd: number;
  try {
    fd = openSync(path, FLAGS[mode] | (linked ? 0 : constants.O_NOFOLLOW), 0o640);
  } catch (e) {
    throw new Error(`${field}: cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const stat = fstatSync(fd);
    if (linked) {
      if (!stat.isBlockDevice()) throw new Error(`${field}: ${path} is not a block device`);
    } else {
      if (!stat.isFile()) throw new Error(`${field}: ${path} is not a regular file`);
      const real = readlinkSync(`/proc/self/fd/${fd}`);
      if (real !== path) throw new Error(`${field}: ${path} resolved to ${real} when opened (a path component was swapped); refusing`);
    }
    giveToOwner(fd, stat, opts.owner);
    return { fd, stat };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * A log file root just created (empty, single link, root-owned) is handed to
 * the owner so the daemon can read it; an existing file is never chowned
 * (that could give the owner a file it does not already control).
 */
export function giveToOwner(fd: number, stat: Stats, owner: { uid: number; gid: number } | undefined): void {
  if (owner === undefined || stat.uid === owner.uid) return;
  if (stat.uid === 0 && stat.size === 0 && stat.nlink === 1 && stat.isFile()) {
    fchownSync(fd, owner.uid, owner.gid);
    fchmodSync(fd, 0o640);
  }
}

/** Descriptors passed to a child as fds 3, 4, ...: add() returns the /proc/self/fd path the child will use. */
export class ChildFds {
  readonly fds: number[] = [];
  add(fd: number): string {
    this.fds.push(fd);
    return `/proc/self/fd/${2 + this.fds.length}`;
  }
  /** Close the parent's copies (the child has its own). */
  closeAll(): void {
    for (const fd of this.fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}
