import { closeSync, openSync } from "node:fs";
import { errnoError, libc } from "../system/libc.js";
import { ifreq, ifreqWithFlags, ifreqWithIndex, netmaskPrefix, readFlags, readIndex, readIpv4 } from "./ifreq.js";

/** What create_tap needs to know about the bridge to skip fixing it. */
export interface BridgeState {
  /** Changes when the bridge is deleted and re-created, taking its per-interface sysctls with it. */
  readonly ifindex: number;
  readonly up: boolean;
  /** The bridge's primary IPv4 address as `a.b.c.d/len`, absent when it has none. */
  readonly cidr?: string;
}

/**
 * The link operations on the VM create path, done with ioctls in this process instead of forking
 * `ip` (each fork of the helper costs milliseconds of CPU, paid per VM). They act on the calling
 * process's network namespace, which is why they are a seam: unit tests run in the host's.
 */
export interface LinkOps {
  exists(name: string): boolean;
  /** undefined when no such interface exists. */
  bridgeState(bridge: string): BridgeState | undefined;
  /** A persistent tap owned by uid/gid; fails (EBUSY) rather than adopt one that already exists. */
  createTap(name: string, uid: number, gid: number): void;
  /** Enslaves `tap` to `bridge` and sets it up. */
  attachUp(tap: string, bridge: string): void;
}

/** Request numbers from <linux/sockios.h> and <linux/if_tun.h> (TUNSET*: _IOW('T', nr, int)), named for error messages. */
const REQUESTS = {
  SIOCGIFFLAGS: 0x8913,
  SIOCSIFFLAGS: 0x8914,
  SIOCGIFADDR: 0x8915,
  SIOCGIFNETMASK: 0x891b,
  SIOCGIFINDEX: 0x8933,
  SIOCBRADDIF: 0x89a2,
  TUNSETIFF: 0x400454ca,
  TUNSETPERSIST: 0x400454cb,
  TUNSETOWNER: 0x400454cc,
  TUNSETGROUP: 0x400454ce,
} as const;
type Request = keyof typeof REQUESTS;

const IFF_UP = 0x1;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_TUN_EXCL = 0x8000;
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0x80000;
const ENODEV = 19;
const EADDRNOTAVAIL = 99;

export const ioctlLinks: LinkOps = {
  exists(name) {
    const c = libc();
    if (c.ifNameToIndex(name) !== 0) return true;
    const errno = c.errno();
    if (errno === ENODEV) return false;
    throw errnoError(`if_nametoindex ${name}`, errno);
  },

  bridgeState(bridge) {
    return withSocket((fd) => {
      const flags = ifreq(bridge);
      const missing = tryIoctl(fd, "SIOCGIFFLAGS", flags);
      if (missing === ENODEV) return undefined;
      if (missing !== 0) throw errnoError(`SIOCGIFFLAGS ${bridge}`, missing);
      const index = ifreq(bridge);
      ioctl(fd, "SIOCGIFINDEX", index, bridge);
      const state = { ifindex: readIndex(index), up: (readFlags(flags) & IFF_UP) !== 0 };
      const addr = ifreq(bridge);
      const noAddr = tryIoctl(fd, "SIOCGIFADDR", addr);
      if (noAddr === EADDRNOTAVAIL) return state;
      if (noAddr !== 0) throw errnoError(`SIOCGIFADDR ${bridge}`, noAddr);
      const mask = ifreq(bridge);
      ioctl(fd, "SIOCGIFNETMASK", mask, bridge);
      const prefix = netmaskPrefix(readIpv4(mask));
      return prefix === undefined ? state : { ...state, cidr: `${readIpv4(addr)}/${prefix}` };
    });
  },

  createTap(name, uid, gid) {
    const fd = openTun(name);
    try {
      // TUN_EXCL, as `ip tuntap add` uses: without it TUNSETIFF attaches to an existing tap of that name.
      ioctl(fd, "TUNSETIFF", ifreqWithFlags(name, IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL), name);
      // Until TUNSETPERSIST the tap lives only as long as this fd, so closing it after any failure
      // up to here leaves nothing behind; persistence is the last step and nothing follows it.
      ioctlInt(fd, "TUNSETOWNER", uid, name);
      ioctlInt(fd, "TUNSETGROUP", gid, name);
      ioctlInt(fd, "TUNSETPERSIST", 1, name);
    } finally {
      closeSync(fd);
    }
  },

  attachUp(tap, bridge) {
    withSocket((fd) => {
      const index = ifreq(tap);
      ioctl(fd, "SIOCGIFINDEX", index, tap);
      ioctl(fd, "SIOCBRADDIF", ifreqWithIndex(bridge, readIndex(index)), `${tap} to ${bridge}`);
      const flags = ifreq(tap);
      ioctl(fd, "SIOCGIFFLAGS", flags, tap);
      ioctl(fd, "SIOCSIFFLAGS", ifreqWithFlags(tap, readFlags(flags) | IFF_UP), tap);
    });
  },
};

function withSocket<T>(fn: (fd: number) => T): T {
  const c = libc();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw errnoError("socket(AF_INET, SOCK_DGRAM)", c.errno());
  try {
    return fn(fd);
  } finally {
    c.close(fd);
  }
}

/** 0, or the errno of the failed ioctl, for callers that expect some failures. */
function tryIoctl(fd: number, request: Request, req: Buffer): number {
  const c = libc();
  return c.ioctlPtr(fd, REQUESTS[request], req) < 0 ? c.errno() : 0;
}

/** An ioctl on a struct ifreq; a failure names the request, the interface and errno ("TUNSETIFF tap-fc-0123abcd: EBUSY"). */
function ioctl(fd: number, request: Request, req: Buffer, what: string): void {
  const errno = tryIoctl(fd, request, req);
  if (errno !== 0) throw errnoError(`${request} ${what}`, errno);
}

function ioctlInt(fd: number, request: Request, arg: number, what: string): void {
  const c = libc();
  if (c.ioctlInt(fd, REQUESTS[request], arg) < 0) throw errnoError(`${request} ${what}`, c.errno());
}

/** libuv opens with O_CLOEXEC, so the VMMs this helper launches never inherit the fd. */
function openTun(name: string): number {
  try {
    return openSync("/dev/net/tun", "r+");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "unknown error";
    throw Object.assign(new Error(`open /dev/net/tun for ${name}: ${code}`, { cause: e }), { code });
  }
}
