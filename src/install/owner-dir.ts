import { closeSync, constants, fchownSync, fstatSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";

/**
 * A directory of the owner's (0700) in the system layout — the state dir, the daemon's runtime dir —
 * made by root inside root's own parent (/var/lib, /run: after a reboot /run is empty again), then
 * handed over through its descriptor, never by name. An existing one must already be the owner's
 * real directory; helper and daemon check it again at start.
 */
export function ownerDir(path: string, owner: { readonly name?: string; readonly uid: number; readonly gid: number }): void {
  // Parents 0755 (the owner must traverse them), the directory itself 0700.
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (st.uid === 0 && owner.uid !== 0) fchownSync(fd, owner.uid, owner.gid);
    else if (st.uid !== owner.uid) throw new Error(`${path} belongs to uid ${st.uid}, not the owner ${owner.name ?? ""} (uid ${owner.uid}); remove it, or chown it to the owner, and install again`);
  } finally {
    closeSync(fd);
  }
}
