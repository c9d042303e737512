import { closeSync, createReadStream, createWriteStream, ftruncate, readSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { named, openRegular } from "../fs/beneath.js";
import type { Held } from "./spec-files.js";
import type { HelperEnv } from "../env.js";

/**
 * A snapshot's two files (priv.vmm_save_state writes them, a launch with `restore` reads them): the
 * owner's regular files beneath the state dir, made by the daemon, reached by descriptor only
 * (openRegular: no symlink on the way, no FIFO/device/socket opened, the owner's). Root never creates
 * a file in the owner's tree, and the stream inside is parsed only by the VMM, as the owner.
 */
export interface SnapshotHeld {
  readonly state: Held;
  readonly memory: Held;
}

/** For a save: both opened read-write and emptied; a hard link (to a file root would then write) is refused. */
export async function openSnapshotForSave(env: HelperEnv, statePath: string, memoryPath: string): Promise<SnapshotHeld & { close(): void }> {
  const open = (field: string, path: string): Held => openRegular(named(field, path, env.roots.state), "readwrite", { uid: env.ownerUid });
  const state = open("state_path", statePath);
  let memory: Held;
  try {
    memory = open("memory_path", memoryPath);
  } catch (e) {
    closeSync(state.fd);
    throw e;
  }
  const close = (): void => {
    closeSync(state.fd);
    closeSync(memory.fd);
  };
  try {
    if (state.stat.ino === memory.stat.ino && state.stat.dev === memory.stat.dev) throw new Error("state_path and memory_path are the same file; give two files");
    await promisify(ftruncate)(state.fd, 0);
    await promisify(ftruncate)(memory.fd, 0);
  } catch (e) {
    close();
    throw e;
  }
  return { state, memory, close };
}

/**
 * For a restore: both read-only, kept open by the launch and handed to the VMM. More than one link is
 * accepted, as for kernels: the file is only read, and a jailed Firecracker's jail holds a second link.
 */
export function openSnapshotForRestore(env: HelperEnv, hold: (fd: number) => void, restore: { readonly state_path: string; readonly memory_path: string }): SnapshotHeld {
  const open = (field: string, path: string): Held => {
    const h = openRegular(named(field, path, env.roots.state), "read", { uid: env.ownerUid, linked: true });
    hold(h.fd);
    return h;
  };
  return { state: open("restore.state_path", restore.state_path), memory: open("restore.memory_path", restore.memory_path) };
}

/** Copy all of `fromFd` into `toFd` from offset 0, off the event loop's thread; neither is closed. */
export async function copyInto(fromFd: number, toFd: number): Promise<void> {
  await pipeline(createReadStream("", { fd: fromFd, autoClose: false, start: 0 }), createWriteStream("", { fd: toFd, autoClose: false, start: 0 }));
}

/**
 * The last lines of a VMM's log (the owner's file, read by descriptor, at most its last 4 KiB), for an
 * error that says why the VMM gave up: the bytes are the VMM's, shown, never interpreted.
 */
export function vmmLogTail(env: HelperEnv, path: string, lines = 3): string {
  let h: Held;
  try {
    h = openRegular(named("vmm_log", path, env.roots.state), "read", { uid: env.ownerUid });
  } catch (e) {
    return `(its log ${path} cannot be read: ${e instanceof Error ? e.message : String(e)})`;
  }
  try {
    const size = h.stat.size;
    const buf = Buffer.alloc(Math.min(4096, size));
    readSync(h.fd, buf, 0, buf.length, size - buf.length);
    const text = buf.toString("utf8").replace(/[^\x20-\x7e\n\t]/g, "?");
    const tail = text.split("\n").map((l) => l.trim()).filter((l) => l !== "").slice(-lines);
    return tail.length === 0 ? `(nothing in ${path})` : `${tail.join(" / ")} (from ${path})`;
  } finally {
    closeSync(h.fd);
  }
}
