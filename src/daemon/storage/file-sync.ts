import { constants } from "node:fs";
import { lstat, open, readdir, realpath } from "node:fs/promises";
import { isAbsolute, join, normalize, posix, sep } from "node:path";
import type { FileSyncEntry } from "../../config/schema.js";
import { hasControlChars } from "../../model/text.js";
import { checkGuestPath, type Ext4Dir, type Ext4File } from "./ext4.js";

/**
 * `file_sync` config entries: copy files (or directory trees) from the
 * owner's home into the guest. Only the home directory is a valid source:
 * `../` is refused outright, and every file is resolved with realpath so a
 * symlink pointing outside the home (e.g. ~/x -> /etc/shadow, or into
 * another user's home) is refused too. Guest paths under /root go to the
 * work disk (mounted at /root), everything else to the root disk.
 */

export interface Ext4Edits {
  files: Ext4File[];
  dirs: Ext4Dir[];
}

export interface FileSyncPlan {
  readonly root: Ext4Edits;
  readonly work: Ext4Edits;
}

const MAX_FILES = 2000;
const MAX_BYTES = 256 * 1024 * 1024;

export class FileSyncError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FileSyncError";
  }
}

function within(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** Where `host` (~/x, x relative to home, or an absolute path in home) points, refusing `..`. */
export function hostPathInHome(host: string, home: string): string {
  if (hasControlChars(host)) throw new FileSyncError(`file_sync host path ${JSON.stringify(host)} contains control characters`);
  const raw = host === "~" ? "" : host.startsWith("~/") ? host.slice(2) : host;
  if (raw.split(/[/\\]/).includes("..")) throw new FileSyncError(`file_sync host path ${JSON.stringify(host)} contains "..": only files inside ${home} can be synced`);
  const abs = normalize(isAbsolute(raw) ? raw : join(home, raw));
  if (!within(home, abs)) throw new FileSyncError(`file_sync host path ${JSON.stringify(host)} is outside the home directory ${home}`);
  return abs;
}

/** Guest paths under /root are written to the work disk; the rest to the root disk. */
function target(guest: string): { disk: "root" | "work"; path: string } {
  if (guest === "/root") return { disk: "work", path: "/" };
  if (guest.startsWith("/root/")) return { disk: "work", path: guest.slice("/root".length) };
  return { disk: "root", path: guest };
}

function parseMode(mode: string | undefined): number | undefined {
  return mode === undefined ? undefined : parseInt(mode, 8);
}

export async function planFileSync(entries: readonly FileSyncEntry[], home: string): Promise<FileSyncPlan> {
  const realHome = await realpath(home).catch(() => {
    throw new FileSyncError(`home directory ${home} does not exist`);
  });
  const plan: FileSyncPlan = { root: { files: [], dirs: [] }, work: { files: [], dirs: [] } };
  let count = 0;
  let bytes = 0;

  async function resolveInside(p: string, shown: string): Promise<string> {
    let real: string;
    try {
      real = await realpath(p);
    } catch {
      throw new FileSyncError(`file_sync source ${shown} does not exist`);
    }
    if (!within(realHome, real)) throw new FileSyncError(`file_sync source ${shown} resolves to ${real}, outside the home directory ${realHome}; symlinks out of the home are refused`);
    return real;
  }

  async function addFile(real: string, shown: string, guest: string, mode: number | undefined): Promise<void> {
    if (++count > MAX_FILES) throw new FileSyncError(`file_sync would copy more than ${MAX_FILES} files; narrow the entries`);
    // O_NOFOLLOW: the realpath we checked must be what we read, even if a
    // component is swapped for a symlink in between.
    const fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new FileSyncError(`file_sync source ${shown} is not a regular file`);
      bytes += st.size;
      if (bytes > MAX_BYTES) throw new FileSyncError(`file_sync would copy more than ${MAX_BYTES} bytes; narrow the entries`);
      const data = await fh.readFile();
      const t = target(checkGuestPath(guest));
      if (t.path === "/") throw new FileSyncError(`file_sync guest path ${guest} is the work disk root; name a file under it`);
      plan[t.disk].files.push({ path: t.path, data, mode: mode ?? st.mode & 0o7777, uid: 0, gid: 0 });
    } finally {
      await fh.close();
    }
  }

  async function addTree(real: string, shown: string, guest: string, mode: number | undefined): Promise<void> {
    const st = await lstat(real);
    if (st.isDirectory()) {
      const t = target(checkGuestPath(guest));
      if (t.path !== "/") plan[t.disk].dirs.push({ path: t.path, mode: st.mode & 0o7777, uid: 0, gid: 0 });
      for (const name of (await readdir(real)).sort()) {
        const childShown = `${shown}/${name}`;
        const childReal = await resolveInside(join(real, name), childShown);
        await addTree(childReal, childShown, posix.join(guest, name), mode);
      }
      return;
    }
    await addFile(real, shown, guest, mode);
  }

  for (const e of entries) {
    const abs = hostPathInHome(e.host, home);
    const real = await resolveInside(abs, e.host);
    try {
      checkGuestPath(e.guest);
    } catch (err) {
      throw new FileSyncError(`file_sync guest path: ${(err as Error).message}`);
    }
    await addTree(real, e.host, e.guest, parseMode(e.mode));
  }
  return plan;
}
