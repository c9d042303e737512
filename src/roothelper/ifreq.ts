/**
 * The byte layout of Linux's `struct ifreq` on 64-bit little-endian hosts (x86-64, arm64), kept
 * in pure functions so it is tested without ioctls: ifr_name[IFNAMSIZ] then a 24-byte union
 * holding ifr_flags (short), ifr_ifindex (int) or ifr_addr (struct sockaddr_in).
 */

const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;
const UNION = IFNAMSIZ;
const AF_INET = 2;

/** A zeroed ifreq naming `name`; names that cannot fit with their NUL are refused, never truncated onto another device. */
export function ifreq(name: string): Buffer {
  if (!/^[\x21-\x7e]+$/.test(name) || name.length >= IFNAMSIZ) throw new Error(`${JSON.stringify(name)} does not fit in ifr_name`);
  const buf = Buffer.alloc(IFREQ_SIZE);
  buf.write(name, 0, "latin1");
  return buf;
}

export function ifreqWithFlags(name: string, flags: number): Buffer {
  const buf = ifreq(name);
  // Unsigned: TUNSETIFF's IFF_TUN_EXCL is 0x8000, the short's sign bit.
  buf.writeUInt16LE(flags & 0xffff, UNION);
  return buf;
}

export function ifreqWithIndex(name: string, ifindex: number): Buffer {
  const buf = ifreq(name);
  buf.writeInt32LE(ifindex, UNION);
  return buf;
}

export function readFlags(buf: Buffer): number {
  return buf.readUInt16LE(UNION);
}

export function readIndex(buf: Buffer): number {
  return buf.readInt32LE(UNION);
}

/** ifr_addr as a dotted quad (SIOCGIFADDR, SIOCGIFNETMASK); sin_port sits between the family and the address. */
export function readIpv4(buf: Buffer): string {
  const family = buf.readUInt16LE(UNION);
  if (family !== AF_INET) throw new Error(`ifr_addr has address family ${family}, not AF_INET`);
  return [...buf.subarray(UNION + 4, UNION + 8)].join(".");
}

/** The prefix length of a dotted-quad netmask, or undefined when its ones are not contiguous. */
export function netmaskPrefix(mask: string): number | undefined {
  const bits = mask.split(".").map((o) => Number(o).toString(2).padStart(8, "0")).join("");
  if (!/^[01]{32}$/.test(bits) || !/^1*0*$/.test(bits)) return undefined;
  return bits.indexOf("0") === -1 ? 32 : bits.indexOf("0");
}
