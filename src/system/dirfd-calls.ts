import { errnoError, libc, libcLibrary } from "./libc.js";

/**
 * The descriptor-relative calls the root helper acts through (openat2,
 * unlinkat, mkdirat, mknodat, linkat, fchownat, renameat2), the pidfd calls it
 * signals through, and close_range for what it inherited. Node has none of them: its fs API takes names, and a name
 * in a directory the owner can write is re-resolved by the kernel at every
 * use. Each call throws an errno-coded Error instead of returning -1.
 * openat2, close_range and the pidfd calls go through syscall(2): glibc 2.36
 * has no openat2 wrapper, and these numbers are the same on every architecture
 * (they were allocated after the tables were unified, 424 and up).
 */

const SYS_PIDFD_SEND_SIGNAL = 424;
const SYS_PIDFD_OPEN = 434;
const SYS_CLOSE_RANGE = 436;
const CLOSE_RANGE_CLOEXEC = 4;
const SYS_OPENAT2 = 437;

export const AT_FDCWD = -100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const RENAME_EXCHANGE = 2;

/** openat2(2) resolve flags. */
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;

/** open(2) flags Node's fs.constants lacks or spells per platform; Linux values. */
export const O_PATH = 0o10000000;
export const O_CLOEXEC = 0o2000000;

export interface DirfdCalls {
  /** openat2(2): a new descriptor, O_CLOEXEC added. */
  openat2(dirFd: number, path: string, flags: number, mode: number, resolve: number): number;
  unlinkat(dirFd: number, name: string, flags: number): void;
  mkdirat(dirFd: number, name: string, mode: number): void;
  mknodat(dirFd: number, name: string, mode: number, dev: bigint): void;
  linkat(oldDirFd: number, oldName: string, newDirFd: number, newName: string, flags: number): void;
  renameat2(oldDirFd: number, oldName: string, newDirFd: number, newName: string, flags: number): void;
  /** fchownat(2); with AT_SYMLINK_NOFOLLOW a symlink itself, never what it points to. */
  fchownat(dirFd: number, name: string, uid: number, gid: number, flags: number): void;
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal(2) with no siginfo; signal 0 only asks whether the process is still there. */
  pidfdSendSignal(pidFd: number, signal: number): void;
  /** close_range(first, ~0, CLOSE_RANGE_CLOEXEC): every descriptor from `first` up is closed at the next exec. */
  cloexecFrom(first: number): void;
}

let bound: DirfdCalls | undefined;

export function dirfdCalls(): DirfdCalls {
  bound ??= bind();
  return bound;
}

function bind(): DirfdCalls {
  const lib = libcLibrary();
  const syscall = lib.func("long syscall(long number, ...)");
  const unlinkat = lib.func("int unlinkat(int dirfd, const char *path, int flags)");
  const mkdirat = lib.func("int mkdirat(int dirfd, const char *path, uint32_t mode)");
  const mknodat = lib.func("int mknodat(int dirfd, const char *path, uint32_t mode, uint64_t dev)");
  const linkat = lib.func("int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)");
  const fchownat = lib.func("int fchownat(int dirfd, const char *path, uint32_t owner, uint32_t group, int flags)");
  const renameat2 = lib.func("int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)");
  const ok = (what: string, rc: unknown): number => {
    const n = Number(rc);
    if (n < 0) throw errnoError(what, libc().errno());
    return n;
  };
  return {
    openat2: (dirFd, path, flags, mode, resolve) => {
      // struct open_how { u64 flags; u64 mode; u64 resolve; }
      const how = Buffer.alloc(24);
      how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
      how.writeBigUInt64LE(BigInt(mode), 8);
      how.writeBigUInt64LE(BigInt(resolve), 16);
      return ok(`openat2 ${path}`, syscall(SYS_OPENAT2, "int", dirFd, "const char *", path, "uint8_t *", how, "size_t", how.length));
    },
    unlinkat: (dirFd, name, flags) => void ok(`unlinkat ${name}`, unlinkat(dirFd, name, flags)),
    mkdirat: (dirFd, name, mode) => void ok(`mkdirat ${name}`, mkdirat(dirFd, name, mode)),
    mknodat: (dirFd, name, mode, dev) => void ok(`mknodat ${name}`, mknodat(dirFd, name, mode, dev)),
    linkat: (oldDirFd, oldName, newDirFd, newName, flags) => void ok(`linkat ${newName}`, linkat(oldDirFd, oldName, newDirFd, newName, flags)),
    renameat2: (oldDirFd, oldName, newDirFd, newName, flags) => void ok(`renameat2 ${oldName}`, renameat2(oldDirFd, oldName, newDirFd, newName, flags)),
    fchownat: (dirFd, name, uid, gid, flags) => void ok(`fchownat ${name}`, fchownat(dirFd, name, uid, gid, flags)),
    pidfdOpen: (pid) => ok(`pidfd_open ${pid}`, syscall(SYS_PIDFD_OPEN, "int", pid, "unsigned int", 0)),
    pidfdSendSignal: (pidFd, signal) => void ok(`pidfd_send_signal ${signal}`, syscall(SYS_PIDFD_SEND_SIGNAL, "int", pidFd, "int", signal, "void *", null, "unsigned int", 0)),
    cloexecFrom: (first) => void ok(`close_range ${first}`, syscall(SYS_CLOSE_RANGE, "unsigned int", first, "unsigned int", 0xffffffff, "unsigned int", CLOSE_RANGE_CLOEXEC)),
  };
}
