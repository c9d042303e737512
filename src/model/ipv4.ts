/**
 * Pure IPv4/CIDR arithmetic shared by the daemon (lease allocation, guest
 * config) and the root helper (bridge address). No Node APIs, no I/O.
 */

export interface Ipv4Network {
  /** Network address as an unsigned 32-bit integer. */
  readonly network: number;
  readonly prefix: number;
  /** Number of addresses in the block, network and broadcast included. */
  readonly size: number;
}

export function ipv4ToInt(ip: string): number {
  const parts = ip.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
    throw new Error(`${JSON.stringify(ip)} is not an IPv4 address`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** Parses "a.b.c.d/N"; host bits are cleared so "172.16.90.7/24" means 172.16.90.0/24. */
export function parseCidr(cidr: string): Ipv4Network {
  const [addr, prefixText, ...rest] = cidr.split("/");
  const prefix = Number(prefixText);
  if (addr === undefined || rest.length > 0 || !/^[0-9]{1,2}$/.test(prefixText ?? "") || prefix < 8 || prefix > 30) {
    throw new Error(`${JSON.stringify(cidr)} is not an IPv4 CIDR with prefix /8../30`);
  }
  const size = 2 ** (32 - prefix);
  const network = Math.floor(ipv4ToInt(addr) / size) * size;
  return { network, prefix, size };
}

/** The bridge (gateway) takes the first host address of the block. */
export function bridgeIp(cidr: string): string {
  return intToIpv4(parseCidr(cidr).network + 1);
}

/** Host addresses guests may use: everything except network, bridge (first host) and broadcast. */
export function guestRange(cidr: string): { first: number; last: number } {
  const net = parseCidr(cidr);
  return { first: net.network + 2, last: net.network + net.size - 2 };
}

export function cidrContains(cidr: string, ip: string): boolean {
  const net = parseCidr(cidr);
  const n = ipv4ToInt(ip);
  return n >= net.network && n < net.network + net.size;
}
