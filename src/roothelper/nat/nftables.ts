import { CommandError, type Runner } from "../../system/runner.js";
import type { DnsRedirect, NatBackend, NatGuest, NatState } from "./types.js";

/**
 * nftables backend: ONE table `ip banger` holding a set of guest IPs (each
 * element commented with its tap) and two base chains that match the set.
 * Enabling/disabling a guest is a single set-element change inside one
 * `nft -f -` transaction (atomic), and removing everything is one
 * `delete table`. Scripts go through stdin, never a shell; every value in them
 * was validated by the caller (IPv4, tap and bridge names cannot carry quotes).
 */

export const NFT_TABLE = "banger";
const FAMILY = "ip";
/** An empty chain whose presence records that banger switched ip_forward on (lives and dies with the table). */
const IP_FORWARD_MARKER = "ip_forward_set_by_banger";

export function nftCreateScript(bridge: string, ipForwardOwned: boolean, guest: NatGuest, dns?: DnsRedirect): string {
  const t = `${FAMILY} ${NFT_TABLE}`;
  const lines = [
    `add table ${t}`,
    `add set ${t} guests { type ipv4_addr; comment "guest IPs banger masquerades"; }`,
    // srcnat/filter priorities: the same slots iptables' nat/filter tables use, so ordering with other tables is conventional.
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${t} forward { type filter hook forward priority filter; policy accept; }`,
    // Guest-to-guest and guest-to-host traffic stays on the bridge; only traffic leaving through another link is masqueraded.
    `add rule ${t} postrouting ip saddr @guests oifname != "${bridge}" counter masquerade`,
    `add rule ${t} forward iifname "${bridge}" ip saddr @guests counter accept`,
    `add rule ${t} forward oifname "${bridge}" ip daddr @guests ct state established,related counter accept`,
  ];
  if (dns !== undefined) {
    lines.push(
      `add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
      `add rule ${t} prerouting iifname "${bridge}" ip saddr @guests ip daddr ${dns.gateway} meta l4proto { tcp, udp } th dport 53 counter redirect to :${dns.port}`,
    );
  }
  if (ipForwardOwned) lines.push(`add chain ${t} ${IP_FORWARD_MARKER}`);
  lines.push(nftAddElement(guest));
  return lines.join("\n") + "\n";
}

export function nftAddElement(guest: NatGuest): string {
  return `add element ${FAMILY} ${NFT_TABLE} guests { ${guest.ip} comment "${guest.tap}" }`;
}

export function nftDeleteElement(ip: string): string {
  return `delete element ${FAMILY} ${NFT_TABLE} guests { ${ip} }`;
}

interface NftJson {
  nftables?: {
    set?: { name?: string; table?: string; elem?: ({ elem?: { val?: unknown; comment?: unknown } } | string)[] };
    chain?: { name?: string; table?: string };
  }[];
}

/** Parses `nft -j list table ip banger`. Exported for unit tests. */
export function parseNftState(json: string): NatState {
  const doc = JSON.parse(json) as NftJson;
  const guests: NatGuest[] = [];
  let ipForwardOwned = false;
  for (const item of doc.nftables ?? []) {
    if (item.chain?.name === IP_FORWARD_MARKER) ipForwardOwned = true;
    if (item.set?.name !== "guests") continue;
    for (const e of item.set.elem ?? []) {
      if (typeof e === "string") guests.push({ ip: e, tap: "" });
      else if (typeof e.elem?.val === "string") guests.push({ ip: e.elem.val, tap: typeof e.elem.comment === "string" ? e.elem.comment : "" });
    }
  }
  return { guests, ipForwardOwned };
}

/** `nft -f -` of a script (one transaction), and whether nft works here: shared by banger's nft tables. */
export function nftTool(runner: Runner, nft: string): { apply: (script: string) => Promise<void>; available: () => Promise<boolean> } {
  return {
    apply: async (script) => {
      await runner.run([nft, "-f", "-"], { stdin: script, timeoutMs: 10_000 });
    },
    available: async () => {
      try {
        await runner.run([nft, "list", "tables"], { timeoutMs: 10_000 });
        return true;
      } catch {
        return false;
      }
    },
  };
}

export function nftablesBackend(runner: Runner, nft = "nft", dns?: DnsRedirect): NatBackend {
  const { apply, available } = nftTool(runner, nft);
  return {
    kind: "nftables",
    available,
    async state() {
      let out: Buffer;
      try {
        ({ stdout: out } = await runner.run([nft, "-j", "list", "table", FAMILY, NFT_TABLE], { timeoutMs: 10_000 }));
      } catch (e) {
        // nft exits 1 with "No such file or directory" when the table is absent: that is "nothing installed".
        if (e instanceof CommandError && e.exitCode === 1 && /No such file|does not exist/i.test(e.stderr)) return undefined;
        throw e;
      }
      return parseNftState(out.toString("utf8"));
    },
    create: (bridge, ipForwardOwned, guest) => apply(nftCreateScript(bridge, ipForwardOwned, guest, dns)),
    addGuests: (_bridge, guests) => apply(guests.map((g) => `${nftAddElement(g)}\n`).join("")),
    removeGuest: (ip) => apply(nftDeleteElement(ip) + "\n"),
    async removeAll() {
      if ((await this.state()) === undefined) return;
      await apply(`delete table ${FAMILY} ${NFT_TABLE}\n`);
    },
  };
}
