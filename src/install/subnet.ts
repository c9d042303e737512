import { intToIpv4, ipv4ToInt } from "../model/ipv4.js";
import type { Runner } from "../system/runner.js";

/**
 * Where the bridge subnet is looked for, /24 by /24 in order: from the historical default
 * 172.16.90.0/24 (existing setups keep it) to the end of 172.16.0.0/12, then in 10/8 and
 * 192.168/16 from their .90 onwards, past the low numbers home routers and VPNs favour.
 */
const CANDIDATE_RANGES = [["172.16.90.0", "172.31.255.0"], ["10.90.0.0", "10.255.255.0"], ["192.168.90.0", "192.168.255.0"]] as const;

interface RouteLike { readonly dst?: unknown; readonly dev?: unknown }
interface AddrLike { readonly ifname?: unknown; readonly addr_info?: readonly { family?: unknown; local?: unknown; prefixlen?: unknown }[] }

/** Networks the host already uses (routes of every table, and addresses), except those on `ownBridge` (a re-install's). */
export function usedNetworks(routes: readonly RouteLike[], addrs: readonly AddrLike[], ownBridge: string): { network: number; size: number }[] {
  const used: { network: number; size: number }[] = [];
  const add = (cidr: string): void => {
    const [addr = "", len = "32"] = cidr.split("/");
    if (!/^[0-9.]+$/.test(addr) || addr.split(".").length !== 4) return;
    const prefix = Number(len);
    if (!Number.isInteger(prefix) || prefix < 1 || prefix > 32) return;
    const size = 2 ** (32 - prefix);
    const n = addr.split(".").reduce((acc, p) => acc * 256 + Number(p), 0);
    used.push({ network: Math.floor(n / size) * size, size });
  };
  for (const r of routes) {
    // The default route covers everything and says nothing about which private block is free.
    if (typeof r.dst !== "string" || r.dst === "default" || r.dev === ownBridge) continue;
    add(r.dst.includes("/") ? r.dst : `${r.dst}/32`);
  }
  for (const l of addrs) {
    if (l.ifname === ownBridge) continue;
    for (const a of l.addr_info ?? []) if (a.family === "inet" && typeof a.local === "string" && typeof a.prefixlen === "number") add(`${a.local}/${a.prefixlen}`);
  }
  return used;
}

/** The first private /24 that overlaps nothing the host routes or addresses; undefined when every candidate is taken. */
export function chooseSubnet(routes: readonly RouteLike[], addrs: readonly AddrLike[], ownBridge: string): string | undefined {
  const used = usedNetworks(routes, addrs, ownBridge);
  const overlaps = (net: number): boolean => used.some((u) => net < u.network + u.size && u.network < net + 256);
  for (const [first, last] of CANDIDATE_RANGES) {
    for (let net = ipv4ToInt(first); net <= ipv4ToInt(last); net += 256) {
      if (!overlaps(net)) return `${intToIpv4(net)}/24`;
    }
  }
  return undefined;
}

/** Reads the host's routes and addresses (`ip -j`) and picks the bridge subnet. */
export async function pickBridgeSubnet(runner: Runner, ownBridge: string): Promise<string> {
  const json = async (argv: string[]): Promise<unknown[]> => JSON.parse((await runner.run(argv)).stdout.toString("utf8") || "[]") as unknown[];
  const routes = (await json(["ip", "-j", "-4", "route", "show", "table", "all"])) as RouteLike[];
  const addrs = (await json(["ip", "-j", "-4", "addr", "show"])) as AddrLike[];
  const cidr = chooseSubnet(routes, addrs, ownBridge);
  if (cidr === undefined) throw new Error(`no free private /24 for the bridge (every /24 from ${CANDIDATE_RANGES.map(([a, b]) => `${a} to ${b}`).join(", ")} overlaps a host route or address); set network.cidr in the config and install again`);
  return cidr;
}
