import { spawnDetached } from "./posix-spawn.js";
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, openSync, writeSync } from "node:fs";

export interface DetachedLaunch {
  /** argv[0] is the executable (resolved through PATH); never a shell. */
  readonly argv: readonly string[];
  /** stdout and stderr are appended here; the file is created 0640 if missing. */
  readonly logFile: string;
  /** Written (exclusive create, 0644) with the child's pid once it has started. */
  readonly pidFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /**
   * Already-open descriptors handed to the child as fds 3, 4, 5... in order
   * (the child refers to them as /proc/self/fd/N). The caller still owns and
   * closes its copies.
   */
  readonly extraFds?: readonly number[];
  /** When root launches for another user: a log file this call created is chowned to them. */
  readonly logOwner?: { readonly uid: number; readonly gid: number };
}

/**
 * Start a long-lived process that outlives its parent: its own session
 * (setsid, so a daemon/helper restart or a terminal hangup never reaches it),
 * stdin from /dev/null, stdout+stderr appended to a log file, and nothing
 * that keeps the parent from exiting. posix_spawn (posix-spawn.ts), not a fork
 * of this Node process: one per VM start. Returns once the exec succeeded
 * (throws on ENOENT/EACCES), with the child's pid.
 */
export function launchDetached(opts: DetachedLaunch): number {
  const [file, ...args] = opts.argv;
  if (file === undefined || file === "") throw new Error("launchDetached: empty argv");
  const logFd = openSync(opts.logFile, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, 0o640);
  try {
    const st = fstatSync(logFd);
    if (!st.isFile()) throw new Error(`launchDetached: log ${opts.logFile} is not a regular file`);
    // Only a file we just created (empty, one link, ours) is handed over; never an existing one.
    if (opts.logOwner !== undefined && st.uid === process.getuid?.() && st.uid !== opts.logOwner.uid && st.size === 0 && st.nlink === 1) {
      fchownSync(logFd, opts.logOwner.uid, opts.logOwner.gid);
    }
    const devNull = openSync("/dev/null", constants.O_RDONLY);
    let pid: number;
    try {
      pid = spawnDetached([file, ...args], { fds: [devNull, logFd, logFd, ...(opts.extraFds ?? [])], env: opts.env ?? process.env, cwd: opts.cwd });
    } catch (e) {
      throw new Error(`cannot start ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    } finally {
      closeSync(devNull);
    }
    if (opts.pidFile !== undefined) {
      // "wx": a leftover pidfile means the caller skipped stale cleanup; fail loudly rather than guess.
      try {
        // "wx" = O_CREAT|O_EXCL: never follows a planted symlink. fchmod on the fd (not the path) because
        // the umask (077 in the root helper) masks the mode and the owner's daemon must read the pidfile.
        const pidFd = openSync(opts.pidFile, "wx", 0o644);
        try {
          fchmodSync(pidFd, 0o644);
          writeSync(pidFd, `${pid}\n`);
        } finally {
          closeSync(pidFd);
        }
      } catch (e) {
        // An untracked VMM would leak: take it down before reporting the failure.
        process.kill(pid, "SIGKILL");
        throw new Error(`started ${file} (pid ${pid}) but could not write pidfile ${opts.pidFile}; killed it: ${(e as Error).message}`, { cause: e });
      }
    }
    return pid;
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(logFd);
  }
}
