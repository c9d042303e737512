import { RpcError } from "../rpc/errors.js";

/**
 * Validators for every value that crosses into the root helper. Each throws
 * RpcError("bad_params") naming the field; none trusts the daemon. Identifiers
 * are checked with anchored regexes and length limits. Paths are not judged
 * here: fs/beneath.ts reaches them by descriptor.
 */

function bad(field: string, why: string): RpcError {
  return new RpcError("bad_params", `${field}: ${why}`);
}

const TAP_RE = /^tap-(fc-[0-9a-f]{8}|pool-[0-9]{1,4})$/;
const DM_NAME_RE = /^fc-rootfs-[0-9a-f]{8,32}$/;
const IFACE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const LOOP_RE = /^\/dev\/loop[0-9]{1,4}$/;
const VM_ID_RE = /^[0-9a-f]{32}$/;

export function tapName(field: string, value: string): string {
  if (!TAP_RE.test(value)) throw bad(field, `${JSON.stringify(value)} is not a banger tap name (tap-fc-XXXXXXXX or tap-pool-N)`);
  return value;
}

export function dmName(field: string, value: string): string {
  if (!DM_NAME_RE.test(value)) throw bad(field, `${JSON.stringify(value)} is not a banger dm target name (fc-rootfs-<hex>)`);
  return value;
}

export function dmDevicePath(field: string, value: string): string {
  const prefix = "/dev/mapper/";
  if (!value.startsWith(prefix)) throw bad(field, `${JSON.stringify(value)} is not under /dev/mapper`);
  dmName(field, value.slice(prefix.length));
  return value;
}

export function loopDevice(field: string, value: string): string {
  if (!LOOP_RE.test(value)) throw bad(field, `${JSON.stringify(value)} is not a loop device path`);
  return value;
}

export function ifaceName(field: string, value: string): string {
  if (!IFACE_RE.test(value)) throw bad(field, `${JSON.stringify(value)} is not an interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  return value;
}

export function vmId(field: string, value: string): string {
  if (!VM_ID_RE.test(value)) throw bad(field, `${JSON.stringify(value)} is not a VM id (32 hex chars)`);
  return value;
}

/** Dotted-quad IPv4 with no leading zeros, spaces or extras. */
export function ipv4(field: string, value: string): string {
  const parts = value.split(".");
  const ok = parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
  if (!ok) throw bad(field, `${JSON.stringify(value)} is not an IPv4 address`);
  return value;
}

/** IPv4 CIDR like 172.16.90.0/24 (prefix 8..30). */
export function ipv4Cidr(field: string, value: string): string {
  const [addr, prefix, ...rest] = value.split("/");
  if (addr === undefined || prefix === undefined || rest.length > 0 || !/^[0-9]{1,2}$/.test(prefix) || Number(prefix) < 8 || Number(prefix) > 30) {
    throw bad(field, `${JSON.stringify(value)} is not an IPv4 CIDR (a.b.c.d/8..30)`);
  }
  ipv4(field, addr);
  return value;
}

/** "IP:PORT" with an IPv4 address. */
export function ipv4Port(field: string, value: string): string {
  const idx = value.lastIndexOf(":");
  const port = value.slice(idx + 1);
  if (idx <= 0 || !/^[1-9][0-9]{0,4}$/.test(port) || Number(port) > 65535) throw bad(field, `${JSON.stringify(value)} is not IPv4:PORT`);
  ipv4(field, value.slice(0, idx));
  return value;
}

/** An integer in [min, max] (vCPU counts, memory sizes, vsock CIDs). */
export function intInRange(field: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw bad(field, `${value} is not an integer in ${min}..${max}`);
  return value;
}

/** A unicast MAC in lowercase aa:bb:cc:dd:ee:ff form. */
export function macAddress(field: string, value: string): string {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(value) || (parseInt(value.slice(0, 2), 16) & 1) === 1) {
    throw bad(field, `${JSON.stringify(value)} is not a unicast MAC (lowercase aa:bb:cc:dd:ee:ff)`);
  }
  return value;
}

/** A kernel command line: printable ASCII only (no newline/NUL smuggling), at most 2048 bytes (Firecracker's limit). */
export function kernelCmdline(field: string, value: string): string {
  if (value.length === 0 || value.length > 2048 || !/^[\x20-\x7e]+$/.test(value)) throw bad(field, "must be 1..2048 printable ASCII characters");
  return value;
}
