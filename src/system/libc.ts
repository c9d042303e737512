import koffi, { type LibraryHandle } from "koffi";
import { constants as osConstants } from "node:os";

/**
 * The few libc calls Node has no API for, bound once through FFI. Each one
 * saves a fork+exec of a tool per VM (forking a ~60 MB Node process copies
 * and then tears down its page tables, which cost more than the work).
 * Bound lazily: the CLI never loads libc through FFI.
 */
export interface Libc {
  getsockopt(fd: number, level: number, name: number, buf: Buffer, len: number[]): number;
  lseek(fd: number, offset: number, whence: number): number;
  /** ioctl(2) with a pointer argument (struct ifreq, ...), which the kernel may write back into. */
  ioctlPtr(fd: number, request: number, arg: Buffer): number;
  /** ioctl(2) with an integer argument (TUNSETOWNER, TUNSETPERSIST, ...). */
  ioctlInt(fd: number, request: number, arg: number): number;
  socket(domain: number, type: number, protocol: number): number;
  close(fd: number): number;
  ifNameToIndex(name: string): number;
  /**
   * copy_file_range(2) from and to the current file offsets, off the event
   * loop (on koffi's worker thread): bytes copied, or -1 (errno is not
   * carried across threads; callers fall back to read/write).
   */
  copyFileRange(fdIn: number, fdOut: number, len: number): Promise<number>;
  /** memfd_create(2) with MFD_CLOEXEC: an anonymous in-memory file, -1 on failure. */
  memfdCreate(name: string): number;
  /** errno of the last failed call on this thread. */
  errno(): number;
}

const MFD_CLOEXEC = 1;

let bound: Libc | undefined;
let library: LibraryHandle | undefined;

export function libc(): Libc {
  bound ??= bind();
  return bound;
}

/** The loaded libc, for modules that bind their own group of calls (posix-spawn.ts). */
export function libcLibrary(): LibraryHandle {
  library ??= koffi.load("libc.so.6");
  return library;
}

function bind(): Libc {
  const lib = libcLibrary();
  const getsockopt = lib.func("int getsockopt(int fd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)");
  const lseek = lib.func("int64_t lseek(int fd, int64_t offset, int whence)");
  const ioctl = lib.func("int ioctl(int fd, unsigned long request, ...)");
  const socket = lib.func("int socket(int domain, int type, int protocol)");
  const close = lib.func("int close(int fd)");
  const ifNameToIndex = lib.func("unsigned int if_nametoindex(const char *name)");
  const memfdCreate = lib.func("int memfd_create(const char *name, unsigned int flags)");
  const copyFileRange = lib.func("intptr_t copy_file_range(int fd_in, void *off_in, int fd_out, void *off_out, size_t len, unsigned int flags)");
  return {
    getsockopt: (fd, level, name, buf, len) => getsockopt(fd, level, name, buf, len) as number,
    lseek: (fd, offset, whence) => Number(lseek(fd, offset, whence)),
    ioctlPtr: (fd, request, arg) => ioctl(fd, request, "uint8_t *", arg) as number,
    ioctlInt: (fd, request, arg) => ioctl(fd, request, "unsigned long", arg) as number,
    socket: (domain, type, protocol) => socket(domain, type, protocol) as number,
    close: (fd) => close(fd) as number,
    ifNameToIndex: (name) => ifNameToIndex(name) as number,
    copyFileRange: (fdIn, fdOut, len) =>
      new Promise((resolve, reject) => {
        copyFileRange.async(fdIn, null, fdOut, null, len, 0, (err: unknown, n: unknown) => {
          if (err instanceof Error) reject(err);
          else if (err !== null && err !== undefined) reject(new Error(`copy_file_range failed: ${JSON.stringify(err)}`));
          else resolve(Number(n) < 0 ? -1 : Number(n));
        });
      }),
    memfdCreate: (name) => memfdCreate(name, MFD_CLOEXEC) as number,
    errno: () => koffi.errno(),
  };
}

/** An Error carrying errno's symbolic code (ENXIO, EXDEV, ...), like Node's own fs errors. */
export function errnoError(what: string, errno: number): NodeJS.ErrnoException {
  const code = errnoName(errno);
  const e: NodeJS.ErrnoException = new Error(`${what}: ${code}`);
  e.code = code;
  e.errno = errno;
  return e;
}

let errnoNames: ReadonlyMap<number, string> | undefined;

/** ENOENT for 2, and so on (Node's own table); "errno N" for a number it does not know. */
export function errnoName(errno: number): string {
  errnoNames ??= new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));
  return errnoNames.get(errno) ?? `errno ${errno}`;
}
