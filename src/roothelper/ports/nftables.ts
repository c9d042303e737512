import { CommandError, type Runner } from "../../system/runner.js";
import { nftTool } from "../nat/nftables.js";
import type { PublishedPort } from "./types.js";

/**
 * Published ports in their own table `ip banger_ports`, apart from the NAT table (which comes and goes
 * with NAT'd guests; ports can be published with NAT off). One map, host address . proto . port →
 * guest address . port, consulted by a DNAT rule in prerouting (traffic from other hosts and
 * namespaces) and in output (the host's own connections, including to 127.0.0.1). Publishing or
 * removing a port is a map-element change in one `nft -f -` transaction. Every value in a script was
 * validated by the caller (IPv4, port numbers, tap and bridge names cannot carry quotes).
 *
 * The host's loopback: a connection to 127.0.0.1:P that output DNATs to a guest still has source
 * 127.0.0.1, which the kernel refuses to route out of a non-loopback link (measured: the connect
 * times out) unless route_localnet is on for that link. So the manager turns it on for banger's
 * bridge only, postrouting masquerades loopback sources leaving through the bridge (the guest
 * answers the bridge address), and a raw-priority prerouting rule drops anything arriving on the
 * bridge for 127.0.0.0/8, so guests gain no way into the host's loopback services (CVE-2020-8558).
 */

export const PORTS_TABLE = "banger_ports";
const T = `ip ${PORTS_TABLE}`;

export function nftPortsCreateScript(bridge: string): string {
  return [
    `add table ${T}`,
    `add map ${T} published { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; comment "host address . proto . port -> guest address . port"; }`,
    `add chain ${T} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    // nft names no dstnat priority for the output hook; -100 is the slot iptables' nat OUTPUT uses.
    `add chain ${T} output { type nat hook output priority -100; policy accept; }`,
    `add chain ${T} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${T} guard { type filter hook prerouting priority raw; policy accept; }`,
    `add chain ${T} forward { type filter hook forward priority filter; policy accept; }`,
    `add rule ${T} prerouting dnat ip to ip daddr . meta l4proto . th dport map @published`,
    `add rule ${T} output dnat ip to ip daddr . meta l4proto . th dport map @published`,
    `add rule ${T} postrouting ip saddr 127.0.0.0/8 oifname "${bridge}" counter masquerade`,
    `add rule ${T} guard iifname "${bridge}" ip daddr 127.0.0.0/8 counter drop`,
    // Accepted here so a host whose own forward policy is drop still passes published traffic.
    `add rule ${T} forward oifname "${bridge}" ct status dnat counter accept`,
  ].join("\n") + "\n";
}

function key(p: PublishedPort): string {
  return `${p.hostIp} . ${p.proto} . ${p.hostPort}`;
}

export function nftPortsChangeScript(add: readonly PublishedPort[], remove: readonly PublishedPort[]): string {
  const lines = [
    ...remove.map((p) => `delete element ${T} published { ${key(p)} }`),
    ...add.map((p) => `add element ${T} published { ${key(p)} comment "${p.tap}" : ${p.guestIp} . ${p.guestPort} }`),
  ];
  return lines.map((l) => `${l}\n`).join("");
}

interface NftMapJson {
  nftables?: { map?: { name?: string; elem?: unknown[] } }[];
}

/** Parses `nft -j list map ip banger_ports published`. Exported for unit tests. */
export function parseNftPorts(json: string): PublishedPort[] {
  const doc = JSON.parse(json) as NftMapJson;
  const out: PublishedPort[] = [];
  for (const item of doc.nftables ?? []) {
    if (item.map?.name !== "published") continue;
    for (const e of item.map.elem ?? []) {
      if (!Array.isArray(e) || e.length !== 2) continue;
      const [k, v] = e as [unknown, unknown];
      const kobj = k as { elem?: { val?: { concat?: unknown[] }; comment?: unknown }; concat?: unknown[] };
      const kc = kobj.elem?.val?.concat ?? kobj.concat;
      const vc = (v as { concat?: unknown[] }).concat;
      if (kc === undefined || vc === undefined) continue;
      const [hostIp, proto, hostPort] = kc;
      const [guestIp, guestPort] = vc;
      if (typeof hostIp !== "string" || (proto !== "tcp" && proto !== "udp") || typeof hostPort !== "number" || typeof guestIp !== "string" || typeof guestPort !== "number") continue;
      const comment = kobj.elem?.comment;
      out.push({ hostIp, proto, hostPort, guestIp, guestPort, tap: typeof comment === "string" ? comment : "" });
    }
  }
  return out;
}

export interface PortsBackend {
  readonly kind: "nftables";
  /** undefined: banger's ports table is not there. */
  list(): Promise<PublishedPort[] | undefined>;
  /** Applies removals then additions in one transaction; `create` first makes the table. */
  change(bridge: string, create: boolean, add: readonly PublishedPort[], remove: readonly PublishedPort[]): Promise<void>;
  removeAll(): Promise<void>;
}

export function nftPortsBackend(runner: Runner, nft = "nft"): PortsBackend {
  const { apply } = nftTool(runner, nft);
  return {
    kind: "nftables",
    async list() {
      try {
        const { stdout } = await runner.run([nft, "-j", "list", "map", "ip", PORTS_TABLE, "published"], { timeoutMs: 10_000 });
        return parseNftPorts(stdout.toString("utf8"));
      } catch (e) {
        if (e instanceof CommandError && e.exitCode === 1 && /No such file|does not exist/i.test(e.stderr)) return undefined;
        throw e;
      }
    },
    change: (bridge, create, add, remove) => apply((create ? nftPortsCreateScript(bridge) : "") + nftPortsChangeScript(add, remove)),
    async removeAll() {
      if ((await this.list()) === undefined) return;
      await apply(`delete table ${T}\n`);
    },
  };
}
