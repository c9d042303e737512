import { closeSync, constants, fstatSync, readFileSync, readSync, realpathSync, type Stats } from "node:fs";
import { basename, isAbsolute, normalize, sep } from "node:path";
import { AT_FDCWD, dirfdCalls, O_PATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS } from "../../system/dirfd-calls.js";
import type { ExecAt } from "../../system/posix-spawn.js";
import { resolveBinary } from "../../vmm/binaries.js";
import { TrustError, type ManagedRoot } from "./managed-root.js";

/**
 * Trust anchors: what decides what root executes or how it behaves must be
 * root's alone. A file qualifies when it is a regular file owned by root,
 * not writable by group or others, and every directory from / down to it is
 * root-owned and not writable by group or others (or sticky, like /tmp,
 * where nobody may rename another user's entries). It is judged at its
 * real path, walked one component at a time by descriptor with no symlink
 * followed, so the checked path is the one used afterwards: nobody but
 * root can change what it names. (The Go original's validateRootExecutable,
 * extended to the directories.)
 */
function checkRootOwned(label: string, realPath: string, rule: (st: Stats) => string | undefined, createMissing = false): number {
  const { fd, parentFd } = walkRootOwned(label, realPath, rule, createMissing);
  if (parentFd !== undefined) closeSync(parentFd);
  return fd;
}

/** checkRootOwned's walk; also returns the checked directory that holds the last component (undefined for /). */
function walkRootOwned(label: string, realPath: string, rule: (st: Stats) => string | undefined, createMissing: boolean): { fd: number; parentFd: number | undefined } {
  const parts = realPath.split(sep).filter((c) => c !== "");
  const calls = dirfdCalls();
  let fd = calls.openat2(AT_FDCWD, "/", O_PATH | constants.O_DIRECTORY, 0, 0);
  let at = "/";
  let parentFd: number | undefined;
  try {
    for (let i = 0; ; i++) {
      const st = fstatSync(fd);
      const last = i === parts.length;
      if (!last) {
        const why = parentDirWhy(st);
        if (why !== undefined) throw new TrustError(`${label} ${realPath}: directory ${at} ${why}`);
      } else {
        const why = rule(st);
        if (why !== undefined) throw new TrustError(`${label} ${realPath}: ${why}`);
        return { fd, parentFd };
      }
      const name = parts[i] ?? "";
      const open = (): number => calls.openat2(fd, name, O_PATH | constants.O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
      let next: number;
      try {
        next = open();
      } catch (e) {
        // Made only in a directory that has just passed the check above, relative to its descriptor.
        if ((e as NodeJS.ErrnoException).code !== "ENOENT" || !createMissing) throw e;
        calls.mkdirat(fd, name, 0o711);
        next = open();
      }
      if (parentFd !== undefined) closeSync(parentFd);
      parentFd = fd;
      fd = next;
      at = at === "/" ? `/${name}` : `${at}/${name}`;
    }
  } catch (e) {
    closeSync(fd);
    if (parentFd !== undefined) closeSync(parentFd);
    if (e instanceof TrustError) throw e;
    throw new TrustError(`${label} ${realPath}: cannot be checked: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function parentDirWhy(st: Stats): string | undefined {
  if (st.uid !== 0) return `is owned by uid ${st.uid}; every directory above a trusted file must be root's`;
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return "is writable by group or others; every directory above a trusted file must be writable only by root";
  return undefined;
}

function rootFileRule(st: Stats): string | undefined {
  if (!st.isFile()) return "is not a regular file";
  if (st.uid !== 0) return `is owned by uid ${st.uid}; it must be owned by root`;
  if ((st.mode & 0o022) !== 0) return "is writable by group or others; it must be writable only by root";
  return undefined;
}

/**
 * A directory root acts in by name through another program (the jailer's
 * --chroot-base-dir): root's alone like a trust anchor, every directory from
 * / down to it included, so no name on the way is one the owner can change.
 * It is walked from / by descriptor (a symlink anywhere is refused, not
 * followed), and missing components are created root's 0711 on the way
 * (each inside a directory that has just passed the check). Returns it as a
 * managed root (an O_PATH descriptor held for the helper's lifetime).
 */
export function trustedDir(label: string, path: string): ManagedRoot {
  if (!isAbsolute(path) || normalize(path) !== path || path === sep || path.endsWith(sep)) throw new TrustError(`${label} ${path}: must be an absolute, normalized path`);
  const rule = (st: Stats): string | undefined => {
    if (!st.isDirectory()) return "is not a directory";
    if (st.uid !== 0) return `is owned by uid ${st.uid}; it must be owned by root`;
    if ((st.mode & 0o022) !== 0) return "is writable by group or others; it must be writable only by root";
    return undefined;
  };
  const fd = checkRootOwned(label, path, rule, true);
  return { path, fd, stat: fstatSync(fd) };
}

/**
 * The helper's config text, read through the descriptor that was checked.
 * undefined when there is no file at all (defaults apply: nothing to trust).
 */
export function readTrustedConfig(path: string): string | undefined {
  let real: string;
  try {
    // The one lookup by name: it only picks which file is judged. That real path is then walked from /
    // by descriptor with no symlink followed, so whatever a symlink on the way pointed to, what is read
    // is a file root's alone, in directories root's alone, and a later change of the link changes nothing.
    real = realpathSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new TrustError(`config ${path}: cannot be resolved: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const pathFd = checkRootOwned("config", real, rootFileRule);
  try {
    return readFileSync(`/proc/self/fd/${pathFd}`, "utf8");
  } finally {
    closeSync(pathFd);
  }
}

/**
 * A binary root executes. `path` is its real path, shown as the child's
 * argv[0]; `execAt()` is what the kernel is asked to execute.
 */
export interface TrustedExecutable {
  readonly path: string;
  /**
   * The directory checked at start, as the descriptor held since then, and
   * the file's name in it, re-checked now (still a regular file of root's,
   * not writable by others, in a directory still root's alone). The spawn
   * executes NAME beneath that descriptor (system/posix-spawn.ts), so
   * renaming or replacing any directory on the way after start changes
   * nothing. Not the file's own descriptor: the kernel names a process
   * after the last component of what it executes, so /proc/self/fd/F would
   * make every VMM's comm "F" and hide it from the identity scans
   * (vmm/identity.ts); execveat(F, "", AT_EMPTY_PATH), which names it after
   * the file, needs a fork that Node cannot do. Between the re-check and the
   * exec, only root can change what NAME is in the directory.
   */
  execAt(): ExecAt;
}

function executableRule(st: Stats): string | undefined {
  return rootFileRule(st) ?? ((st.mode & 0o111) === 0 ? "is not executable" : undefined);
}

/**
 * A VMM binary or tool named by the config, found the way execvp would
 * (PATH) and judged at its real path; its directory's descriptor is held
 * for the helper's lifetime and every exec goes through it
 * (TrustedExecutable.execAt). undefined when it is not installed; a
 * TrustError when it is there but not root's alone.
 */
export function trustedBinary(label: string, name: string): TrustedExecutable | undefined {
  const found = resolveBinary(name);
  if (found === undefined) return undefined;
  // As in readTrustedConfig: the name only picks what is judged; the walk by descriptor decides.
  const real = realpathSync(found);
  const { fd, parentFd } = walkRootOwned(label, real, executableRule, false);
  closeSync(fd);
  if (parentFd === undefined) throw new TrustError(`${label} ${real}: is not a file`);
  const leaf = basename(real);
  const script = startsWithShebang(parentFd, leaf);
  return {
    path: real,
    execAt() {
      const why = parentDirWhy(fstatSync(parentFd));
      if (why !== undefined) throw new TrustError(`${label} ${real}: its directory ${why} (changed since the helper started)`);
      let entry: number;
      try {
        entry = dirfdCalls().openat2(parentFd, leaf, O_PATH | constants.O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
      } catch (e) {
        throw new TrustError(`${label} ${real}: is gone since the helper started (${(e as NodeJS.ErrnoException).code ?? String(e)}); reinstall it or restart the helper`);
      }
      try {
        const changed = executableRule(fstatSync(entry));
        if (changed !== undefined) throw new TrustError(`${label} ${real}: ${changed} (changed since the helper started)`);
      } finally {
        closeSync(entry);
      }
      return { dirFd: parentFd, name: leaf, script };
    },
  };
}

/** Whether `name` in `dirFd` is a script (the kernel runs "#!" files through an interpreter). */
export function startsWithShebang(dirFd: number, name: string): boolean {
  const fd = dirfdCalls().openat2(dirFd, name, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head.toString("latin1") === "#!";
  } finally {
    closeSync(fd);
  }
}
