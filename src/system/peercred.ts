import { libc } from "./libc.js";
import type { Socket } from "node:net";

/** Credentials of the process on the other end of a unix socket, as the kernel reports them. */
export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

/**
 * SO_PEERCRED for an accepted unix socket. Node has no API for it, so this
 * calls getsockopt(2) through FFI on the socket's file descriptor.
 */
export function peerCredOf(socket: Socket): PeerCred {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw new Error("socket has no file descriptor");
  const buf = Buffer.alloc(12);
  const len = [12];
  const rc = libc().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, buf, len);
  if (rc !== 0) throw new Error("getsockopt(SO_PEERCRED) failed");
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}
