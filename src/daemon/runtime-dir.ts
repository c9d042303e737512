import { chmodSync, lstatSync, mkdirSync, realpathSync } from "node:fs";

/** The daemon's runtime dir is not one it may use; the message names the path and what to do. */
export class RuntimeDirError extends Error {}

/**
 * Make (when missing) and check the daemon's runtime dir, where its socket
 * lives. Without $XDG_RUNTIME_DIR it falls back to /tmp/banger-runtime-UID,
 * a name any local user can take first: a directory (or a symlink) planted
 * there by someone else would let them see, replace or intercept the
 * daemon's socket. So the dir must be reached without any symlink, be a
 * directory of `uid`'s own, and be writable by nobody else; it is then made
 * 0700. Refused otherwise, never repaired: it is not ours to change.
 */
export function ensureRuntimeDir(path: string, uid: number): void {
  const refuse = (why: string, todo: string): RuntimeDirError => new RuntimeDirError(`runtime dir ${path} ${why}; ${todo} (or set XDG_RUNTIME_DIR or BANGER_RUNTIME_DIR to a directory of yours)`);
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw refuse(`cannot be created: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, "create it as yourself with mode 0700");
  }
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    throw refuse(`cannot be resolved: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, "check its path");
  }
  if (real !== path) throw refuse(`is reached through a symlink (it resolves to ${real})`, "use the real path, or remove the symlink if you did not make it");
  const st = lstatSync(path);
  if (!st.isDirectory()) throw refuse("is not a directory", "remove it");
  if (st.uid !== uid) throw refuse(`is owned by uid ${st.uid}, not by you (uid ${uid})`, "someone else may have created it first: remove it as root");
  if ((st.mode & 0o022) !== 0) throw refuse(`is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`, "make it yours alone: chmod 0700");
  chmodSync(path, 0o700);
}
