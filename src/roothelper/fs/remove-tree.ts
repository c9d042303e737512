import { closeSync, constants, fstatSync, readdirSync } from "node:fs";
import { AT_REMOVEDIR, dirfdCalls } from "../../system/dirfd-calls.js";
import { RESOLVE } from "./beneath.js";

/**
 * Remove `name` in the verified directory `parentFd`, and everything below
 * it, by descriptor: each directory is opened beneath its parent's
 * descriptor (no symlink followed, no mount crossed: RESOLVE_NO_XDEV fails
 * on a mount point, and the device is compared too) and its entries are
 * unlinked relative to it. A symlink is removed as an entry, never followed;
 * a hard link loses one link and the file it shares stays. Returns whether
 * `name` existed.
 */
export function removeTree(parentFd: number, name: string): boolean {
  const calls = dirfdCalls();
  try {
    calls.unlinkat(parentFd, name, 0);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return false;
    if (code !== "EISDIR") throw e;
  }
  const dirFd = calls.openat2(parentFd, name, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW, 0, RESOLVE);
  try {
    if (fstatSync(dirFd).dev !== fstatSync(parentFd).dev) throw new Error(`${name} is on another filesystem; refusing to remove across a mount`);
    // The magic link names the directory this descriptor holds, whatever was renamed since.
    for (const entry of readdirSync(`/proc/self/fd/${dirFd}`)) removeTree(dirFd, entry);
  } finally {
    closeSync(dirFd);
  }
  calls.unlinkat(parentFd, name, AT_REMOVEDIR);
  return true;
}
