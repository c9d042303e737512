import { spawnDetached, type ExecAt } from "./posix-spawn.js";
import { closeSync, constants, openSync, writeSync } from "node:fs";

export interface DetachedLaunch {
  /** argv[0] is the executable (resolved through PATH unless `execAt` is given); never a shell. */
  readonly argv: readonly string[];
  /** stdout and stderr go to this open descriptor (the caller opened and checked it, and closes its copy). */
  readonly logFd: number;
  /** An open, empty pidfile: the child's pid is written into it once it has started. */
  readonly pidFd?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /**
   * Already-open descriptors handed to the child as fds 3, 4, 5... in order
   * (the child refers to them as /proc/self/fd/N). The caller still owns and
   * closes its copies.
   */
  readonly extraFds?: readonly number[];
  /** The file to execute, as a checked directory descriptor and a name in it (posix-spawn.ts), instead of argv[0] looked up. */
  readonly execAt?: ExecAt;
}

/**
 * Start a long-lived process that outlives its parent: its own session
 * (setsid, so a daemon/helper restart or a terminal hangup never reaches it),
 * stdin from /dev/null, stdout+stderr to a log descriptor, and nothing
 * that keeps the parent from exiting. posix_spawn (posix-spawn.ts), not a fork
 * of this Node process: one per VM start. Returns once the exec succeeded
 * (throws on ENOENT/EACCES), with the child's pid. Files come as descriptors:
 * how they were reached is the caller's business (the root helper reaches
 * them beneath verified directories only).
 */
export function launchDetached(opts: DetachedLaunch): number {
  const [file, ...args] = opts.argv;
  if (file === undefined || file === "") throw new Error("launchDetached: empty argv");
  const devNull = openSync("/dev/null", constants.O_RDONLY);
  let pid: number;
  try {
    pid = spawnDetached([file, ...args], { fds: [devNull, opts.logFd, opts.logFd, ...(opts.extraFds ?? [])], env: opts.env ?? process.env, cwd: opts.cwd, execAt: opts.execAt });
  } catch (e) {
    throw new Error(`cannot start ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    closeSync(devNull);
  }
  if (opts.pidFd !== undefined) {
    try {
      writeSync(opts.pidFd, `${pid}\n`);
    } catch (e) {
      // An untracked VMM would leak: take it down before reporting the failure.
      process.kill(pid, "SIGKILL");
      throw new Error(`started ${file} (pid ${pid}) but could not write its pidfile; killed it: ${(e as Error).message}`, { cause: e });
    }
  }
  return pid;
}
