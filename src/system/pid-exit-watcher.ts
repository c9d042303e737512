import { closeSync } from "node:fs";
import { errnoError, libc, libcLibrary } from "./libc.js";

/**
 * Tells when processes exit, without polling /proc: each watched process is
 * held by a pidfd (which keeps naming that process even if its pid is
 * reused), and one poll(2) over all of them waits on a worker thread, off the
 * event loop. A pidfd becomes readable when its process exits, so an exit is
 * reported within the time poll takes to return (immediately), and a process
 * added while a poll is running joins the next one, at most POLL_MS later.
 * Works for any process the caller can see, child or not (a VMM is the root
 * helper's child, and survives both daemons).
 */
export interface PidExitWatcher {
  /**
   * Watch `pid`; `onExit` runs once when it exits. `verify` runs right after
   * the pidfd is open: false means the pid is not (or no longer) the process
   * meant, which has therefore exited. Returns a function that stops watching.
   */
  watch(pid: number, verify: () => boolean, onExit: () => void): () => void;
  close(): void;
}

const POLL_MS = 1000;
const POLLIN = 0x1;
const SYS_PIDFD_OPEN = 434; // x86_64; the glibc wrapper appeared only in 2.36
const POLLFD_BYTES = 8; // struct pollfd { int fd; short events; short revents; }

interface Bindings {
  pidfdOpen(pid: number): number;
  poll(fds: Buffer, n: number, timeoutMs: number): Promise<number>;
}

let bindings: Bindings | undefined;

function bind(): Bindings {
  const lib = libcLibrary();
  const syscall = lib.func("long syscall(long number, ...)");
  const poll = lib.func("int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)");
  return {
    pidfdOpen: (pid) => Number(syscall(SYS_PIDFD_OPEN, "int", pid, "unsigned int", 0)),
    poll: (fds, n, timeoutMs) =>
      new Promise((resolve, reject) => {
        poll.async(fds, n, timeoutMs, (err: unknown, r: unknown) => {
          if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(`poll failed: ${JSON.stringify(err)}`));
          else resolve(Number(r));
        });
      }),
  };
}

/** pidfd_open(2): a descriptor for `pid`, or undefined when the process is gone. */
export function openPidfd(pid: number): number | undefined {
  bindings ??= bind();
  const fd = bindings.pidfdOpen(pid);
  if (fd >= 0) return fd;
  const errno = libc().errno();
  if (errno === 3 /* ESRCH */) return undefined;
  throw errnoError(`pidfd_open(${pid})`, errno);
}

interface Watch {
  readonly fd: number;
  readonly onExit: () => void;
  cancelled: boolean;
}

export function createPidExitWatcher(onError: (e: unknown) => void): PidExitWatcher {
  const watches = new Set<Watch>();
  let polling = false;
  let closed = false;

  const finish = (w: Watch, exited: boolean): void => {
    watches.delete(w);
    // Closed only between polls: a descriptor closed during poll could be reused by another open.
    closeSync(w.fd);
    if (exited && !w.cancelled) {
      try {
        w.onExit();
      } catch (e) {
        onError(e);
      }
    }
  };

  const loop = async (): Promise<void> => {
    polling = true;
    try {
      while (!closed && watches.size > 0) {
        const round = [...watches];
        const fds = Buffer.alloc(POLLFD_BYTES * round.length);
        round.forEach((w, i) => {
          fds.writeInt32LE(w.fd, i * POLLFD_BYTES);
          fds.writeInt16LE(POLLIN, i * POLLFD_BYTES + 4);
        });
        bindings ??= bind();
        const n = await bindings.poll(fds, round.length, POLL_MS);
        if (n < 0) throw new Error("poll on pidfds failed");
        round.forEach((w, i) => {
          // Any event on a pidfd (readable, or an error) means its process is gone.
          const exited = fds.readInt16LE(i * POLLFD_BYTES + 6) !== 0;
          if (exited || w.cancelled || closed) finish(w, exited);
        });
      }
    } catch (e) {
      onError(e);
    } finally {
      polling = false;
    }
  };

  return {
    watch(pid, verify, onExit) {
      if (closed) throw new Error("exit watcher is closed");
      const fd = openPidfd(pid);
      if (fd === undefined) {
        queueMicrotask(onExit);
        return () => undefined;
      }
      if (!verify()) {
        // The pid names some other process now: the one meant has exited.
        closeSync(fd);
        queueMicrotask(onExit);
        return () => undefined;
      }
      const w: Watch = { fd, onExit, cancelled: false };
      watches.add(w);
      if (!polling) void loop();
      return () => { w.cancelled = true; };
    },
    close() {
      closed = true;
      // A poll in flight returns within POLL_MS and closes its descriptors; idle ones close now.
      if (!polling) for (const w of [...watches]) finish(w, false);
    },
  };
}
