import { constants as osConstants } from "node:os";
import { Socket } from "node:net";
import { errnoError, libc, libcLibrary } from "./libc.js";

/**
 * Starting a tool with posix_spawn(3) instead of child_process.spawn. libuv
 * forks: the kernel copies the page tables of the whole Node process (tens
 * of MB) for a child that replaces them at once, which cost ~2 ms of CPU per
 * tool run (and copy-on-write faults after it) against ~0.1 ms here. glibc's
 * posix_spawn shares the parent's memory until the exec (CLONE_VM|CLONE_VFORK).
 *
 * The child gets pipes as stdin/stdout/stderr plus `extraFds` as fds 3...,
 * default signal dispositions (Node ignores SIGPIPE, and an ignored signal
 * stays ignored across exec) and an empty signal mask, as libuv does. It is
 * reaped here with waitpid(WNOHANG) once its output has ended: libuv only
 * reaps the children it started.
 */
export interface SpawnedChild {
  readonly pid: number;
  readonly stdin: Socket;
  readonly stdout: Socket;
  readonly stderr: Socket;
  /** Resolves with the exit code, or the signal that ended the child. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Execute the file `name` in the directory open as `dirFd` instead of
 * looking argv[0] up: the kernel resolves `/proc/self/fd/D/name` in the
 * child, D being a copy of dirFd above every fd the child is given, so no
 * dup2 into 0, 1, 2, 3... can replace it. argv[0] stays what the child sees.
 */
export interface ExecAt {
  readonly dirFd: number;
  readonly name: string;
  /**
   * A script: the kernel hands the interpreter the path it executed, which
   * the interpreter opens after the exec, so the directory's copy must stay
   * open in the child (as its fd after the ones it is given). A binary gets
   * a close-on-exec copy, gone once it runs.
   */
  readonly script?: boolean | undefined;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly cwd?: string | undefined;
  readonly extraFds?: readonly number[] | undefined;
  readonly execAt?: ExecAt | undefined;
}

export interface DetachedSpawnOptions {
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly cwd?: string | undefined;
  /** The child's fds 0, 1, 2, 3... in order. */
  readonly fds: readonly number[];
  readonly execAt?: ExecAt | undefined;
}

const O_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;
const WNOHANG = 1;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const SIGKILL = 9;
const SIGSTOP = 19;
const ECHILD = 10;
/** Larger than glibc's posix_spawn_file_actions_t (80 bytes), posix_spawnattr_t (336) and sigset_t (128) on x86-64. */
const OPAQUE_BYTES = 1024;
/** Sources of dup2 are first moved at or above this, so no dup2 into 0..N overwrites a later source. */
const HIGH_FD = 64;

interface Bindings {
  spawnp(pid: Buffer, file: string, actions: Buffer, attr: Buffer, argv: (string | null)[], envp: (string | null)[]): number;
  actionsInit(a: Buffer): number;
  actionsDestroy(a: Buffer): number;
  addDup2(a: Buffer, fd: number, newFd: number): number;
  addChdir(a: Buffer, path: string): number;
  attrInit(a: Buffer): number;
  attrDestroy(a: Buffer): number;
  setFlags(a: Buffer, flags: number): number;
  setSigMask(a: Buffer, set: Buffer): number;
  setSigDefault(a: Buffer, set: Buffer): number;
  sigEmpty(set: Buffer): number;
  sigFill(set: Buffer): number;
  sigDel(set: Buffer, sig: number): number;
  pipe2(fds: Buffer, flags: number): number;
  dupCloexec(fd: number, min: number): number;
  close(fd: number): number;
  waitpid(pid: number, status: Buffer, options: number): number;
  errno(): number;
  /** Signal sets for every spawn: none blocked; every catchable one back to its default. */
  readonly noSignals: Buffer;
  readonly allSignals: Buffer;
}

let bound: Bindings | undefined;

function bindings(): Bindings {
  if (bound !== undefined) return bound;
  const lib = libcLibrary();
  const f = (decl: string): ((...args: unknown[]) => number) => {
    const fn = lib.func(decl);
    return (...args) => fn(...args) as number;
  };
  const fcntl = lib.func("int fcntl(int fd, int cmd, ...)");
  bound = {
    spawnp: f("int posix_spawnp(uint8_t *pid, const char *file, uint8_t *file_actions, uint8_t *attrp, const char **argv, const char **envp)"),
    actionsInit: f("int posix_spawn_file_actions_init(uint8_t *a)"),
    actionsDestroy: f("int posix_spawn_file_actions_destroy(uint8_t *a)"),
    addDup2: f("int posix_spawn_file_actions_adddup2(uint8_t *a, int fd, int newfd)"),
    addChdir: f("int posix_spawn_file_actions_addchdir_np(uint8_t *a, const char *path)"),
    attrInit: f("int posix_spawnattr_init(uint8_t *a)"),
    attrDestroy: f("int posix_spawnattr_destroy(uint8_t *a)"),
    setFlags: f("int posix_spawnattr_setflags(uint8_t *a, short flags)"),
    setSigMask: f("int posix_spawnattr_setsigmask(uint8_t *a, const uint8_t *set)"),
    setSigDefault: f("int posix_spawnattr_setsigdefault(uint8_t *a, const uint8_t *set)"),
    sigEmpty: f("int sigemptyset(uint8_t *set)"),
    sigFill: f("int sigfillset(uint8_t *set)"),
    sigDel: f("int sigdelset(uint8_t *set, int sig)"),
    pipe2: f("int pipe2(uint8_t *fds, int flags)"),
    dupCloexec: (fd, min) => fcntl(fd, F_DUPFD_CLOEXEC, "int", min) as number,
    close: f("int close(int fd)"),
    waitpid: f("int waitpid(int pid, uint8_t *status, int options)"),
    errno: () => libc().errno(),
    noSignals: Buffer.alloc(OPAQUE_BYTES),
    allSignals: Buffer.alloc(OPAQUE_BYTES),
  };
  bound.sigEmpty(bound.noSignals);
  bound.sigFill(bound.allSignals);
  bound.sigDel(bound.allSignals, SIGKILL);
  bound.sigDel(bound.allSignals, SIGSTOP);
  return bound;
}

function check(rc: number, what: string): void {
  if (rc !== 0) throw new Error(`${what} failed (error ${rc})`);
}

function pipe(b: Bindings): [number, number] {
  const fds = Buffer.alloc(8);
  if (b.pipe2(fds, O_CLOEXEC) !== 0) throw errnoError("pipe2", b.errno());
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

/**
 * The spawn itself: `fds` become the child's 0, 1, 2, 3..., everything else
 * stays behind (close-on-exec). argv[0] is looked up in PATH like execvp
 * unless `execAt` names the file; never a shell. Throws (with the errno name) when the program cannot be started.
 */
function spawnWith(b: Bindings, argv: readonly string[], fds: readonly number[], options: { env?: NodeJS.ProcessEnv | undefined; cwd?: string | undefined; execAt?: ExecAt | undefined; setsid?: boolean }): number {
  const [file] = argv;
  if (file === undefined || file === "") throw new Error("empty argv");
  const env = options.env ?? process.env;
  const envp = [...Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined).map(([k, v]) => `${k}=${v}`), null];
  const toClose: number[] = [];
  const actions = Buffer.alloc(OPAQUE_BYTES);
  const attr = Buffer.alloc(OPAQUE_BYTES);
  check(b.actionsInit(actions), "posix_spawn_file_actions_init");
  check(b.attrInit(attr), "posix_spawnattr_init");
  try {
    const sources = fds.map((fd) => {
      const high = b.dupCloexec(fd, HIGH_FD);
      if (high < 0) throw errnoError(`fcntl(F_DUPFD_CLOEXEC) of fd ${fd}`, b.errno());
      toClose.push(high);
      return high;
    });
    sources.forEach((fd, target) => { check(b.addDup2(actions, fd, target), "posix_spawn_file_actions_adddup2"); });
    let exec = file;
    if (options.execAt !== undefined) {
      // Close-on-exec like the sources: the path through it is resolved before the exec closes it.
      const dir = b.dupCloexec(options.execAt.dirFd, HIGH_FD);
      if (dir < 0) throw errnoError(`fcntl(F_DUPFD_CLOEXEC) of fd ${options.execAt.dirFd}`, b.errno());
      toClose.push(dir);
      let childFd = dir;
      if (options.execAt.script === true) {
        childFd = sources.length;
        check(b.addDup2(actions, dir, childFd), "posix_spawn_file_actions_adddup2");
      }
      exec = `/proc/self/fd/${childFd}/${options.execAt.name}`;
    }
    if (options.cwd !== undefined) check(b.addChdir(actions, options.cwd), "posix_spawn_file_actions_addchdir_np");
    check(b.setSigMask(attr, b.noSignals), "posix_spawnattr_setsigmask");
    check(b.setSigDefault(attr, b.allSignals), "posix_spawnattr_setsigdefault");
    check(b.setFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (options.setsid === true ? POSIX_SPAWN_SETSID : 0)), "posix_spawnattr_setflags");
    const pidBuf = Buffer.alloc(4);
    const rc = b.spawnp(pidBuf, exec, actions, attr, [...argv, null], envp);
    if (rc !== 0) throw errnoError(`spawn ${file}`, rc);
    return pidBuf.readInt32LE(0);
  } finally {
    for (const fd of toClose) b.close(fd);
    b.actionsDestroy(actions);
    b.attrDestroy(attr);
  }
}

/** A tool run to completion: pipes for stdin/stdout/stderr, `extraFds` as 3, 4, ... */
export function posixSpawn(argv: readonly string[], options: SpawnOptions = {}): SpawnedChild {
  const b = bindings();
  const childEnds: number[] = [];
  let parentEnds: number[] = [];
  try {
    const [inR, inW] = pipe(b);
    const [outR, outW] = pipe(b);
    const [errR, errW] = pipe(b);
    parentEnds = [inW, outR, errR];
    childEnds.push(inR, outW, errW);
    const pid = spawnWith(b, argv, [inR, outW, errW, ...(options.extraFds ?? [])], options);
    const stdin = new Socket({ fd: inW, readable: false, writable: true });
    const stdout = new Socket({ fd: outR, readable: true, writable: false });
    const stderr = new Socket({ fd: errR, readable: true, writable: false });
    parentEnds = [];
    return { pid, stdin, stdout, stderr, exited: reap(b, pid, [stdout, stderr]) };
  } finally {
    for (const fd of [...childEnds, ...parentEnds]) b.close(fd);
  }
}

/**
 * A long-lived process in its own session (setsid: a restart of this process or a terminal
 * hangup never reaches it) that this process does not wait for. It is reaped when it exits
 * (on SIGCHLD), so it never lingers as a zombie while we run; once we are gone, init does it.
 */
export function spawnDetached(argv: readonly string[], options: DetachedSpawnOptions): number {
  const b = bindings();
  const pid = spawnWith(b, argv, options.fds, { ...options, setsid: true });
  detached.add(pid);
  if (detached.size === 1) process.on("SIGCHLD", reapDetached);
  reapDetached();
  return pid;
}

const detached = new Set<number>();

function reapDetached(): void {
  const b = bindings();
  const status = Buffer.alloc(4);
  for (const pid of detached) {
    const r = b.waitpid(pid, status, WNOHANG);
    if (r === pid || (r < 0 && b.errno() === ECHILD)) detached.delete(pid);
  }
  if (detached.size === 0) process.off("SIGCHLD", reapDetached);
}

/** Waits for both output streams to end (the child exited, or closed them), then reaps the child. */
async function reap(b: Bindings, pid: number, streams: readonly Socket[]): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  await Promise.all(streams.map((s) => new Promise<void>((resolve) => { s.once("close", () => { resolve(); }); })));
  const status = Buffer.alloc(4);
  for (let waitMs = 1; ; waitMs = Math.min(50, waitMs * 2)) {
    const r = b.waitpid(pid, status, WNOHANG);
    if (r === pid) return decodeStatus(status.readInt32LE(0));
    if (r < 0 && b.errno() === ECHILD) return { code: null, signal: null };
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

function decodeStatus(status: number): { code: number | null; signal: NodeJS.Signals | null } {
  const sig = status & 0x7f;
  if (sig === 0) return { code: (status >> 8) & 0xff, signal: null };
  const name = Object.entries(osConstants.signals).find(([, n]) => n === sig)?.[0] as NodeJS.Signals | undefined;
  return { code: null, signal: name ?? null };
}
