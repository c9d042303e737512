import { CommandError, type Runner } from "../../system/runner.js";
import { nftTool } from "../nat/nftables.js";
import type { EgressBackend, EgressGuest, EgressHost, EgressRuleset, LearnedAddr } from "./types.js";

/**
 * Egress in two tables of banger's own, apart from NAT and published ports (a guest is protected
 * with NAT off, and these come and go with registered guests):
 *
 * `inet banger_egress` (routed traffic and traffic to the host):
 *  - input: from the bridge only replies (established/related) and banger's DNS on the bridge
 *    address reach the host. The NAT table's dstnat redirect runs before this filter hook, so the
 *    guest's port 53 arrives here already rewritten to the daemon's port.
 *  - forward: 169.254.0.0/16 is dropped for every guest; a guest in `policed` then gets replies,
 *    no port 53 anywhere (banger's DNS is on the host, not forwarded), `allow` (guest . CIDR,
 *    intervals) and `learned` (guest . address, each with a timeout), and nothing else.
 * `bridge banger_egress` (frames between bridge ports, which never reach the ip hooks):
 *  - prerouting: a registered tap sends IPv4 only from its own address (`bound`), so a guest
 *    cannot pass as another one and slip out of its policy;
 *  - forward: an isolated tap exchanges no frame with any other port (it still reaches the host).
 *
 * A guest's change is one `nft -f -` transaction: its old elements deleted, its new ones added.
 * Every value in a script was validated by the caller (IPv4, CIDR, tap and bridge names).
 */

export const EGRESS_TABLE = "banger_egress";
const T = `inet ${EGRESS_TABLE}`;
const B = `bridge ${EGRESS_TABLE}`;

export function nftEgressCreateScript(h: EgressHost): string {
  const br = `iifname "${h.bridge}"`;
  const lines = [
    // Clears a half-present pair (one table deleted by hand): `add` is a no-op on an existing table,
    // so the delete always has something to remove, and the create never meets an old chain.
    `add table ${T}`,
    `delete table ${T}`,
    `add table ${B}`,
    `delete table ${B}`,
    `add table ${T}`,
    `add set ${T} guests { type ipv4_addr; comment "guests with banger's defaults (comment: tap and mode)"; }`,
    `add set ${T} policed { type ipv4_addr; comment "guests under a policy other than all"; }`,
    `add set ${T} allow { type ipv4_addr . ipv4_addr; flags interval; comment "guest . allowed destination"; }`,
    `add set ${T} learned { type ipv4_addr . ipv4_addr; flags timeout; comment "guest . address banger's DNS resolved for an allowed name"; }`,
    `add chain ${T} forward { type filter hook forward priority filter; policy accept; }`,
    `add rule ${T} forward ${br} ip daddr 169.254.0.0/16 counter drop`,
    `add rule ${T} forward ${br} ip saddr != @policed return`,
    `add rule ${T} forward ${br} ct state established,related accept`,
    `add rule ${T} forward ${br} meta l4proto { tcp, udp } th dport 53 counter drop`,
    `add rule ${T} forward ${br} ip saddr . ip daddr @allow accept`,
    `add rule ${T} forward ${br} ip saddr . ip daddr @learned accept`,
    `add rule ${T} forward ${br} counter drop`,
  ];
  if (h.protectHost) {
    lines.push(
      `add chain ${T} input { type filter hook input priority filter; policy accept; }`,
      `add rule ${T} input ${br} ct state established,related accept`,
      ...(h.dnsPort === undefined ? [] : [`add rule ${T} input ${br} ip daddr ${h.gateway} meta l4proto { tcp, udp } th dport ${h.dnsPort} accept`]),
      `add rule ${T} input ${br} counter drop`,
    );
  }
  lines.push(
    `add table ${B}`,
    `add set ${B} ports { type ifname; comment "taps whose IPv4 source is pinned"; }`,
    `add set ${B} bound { type ifname . ipv4_addr; comment "tap . its guest's address"; }`,
    `add set ${B} isolated { type ifname; comment "taps cut off from the other ports"; }`,
    `add chain ${B} prerouting { type filter hook prerouting priority filter; policy accept; }`,
    `add chain ${B} forward { type filter hook forward priority filter; policy accept; }`,
    `add rule ${B} prerouting iifname @ports ether type ip iifname . ip saddr != @bound counter drop`,
    `add rule ${B} forward iifname @isolated counter drop`,
    `add rule ${B} forward oifname @isolated counter drop`,
  );
  return lines.join("\n") + "\n";
}

/** Deletes what `cur` holds for guest `ip` (and for the taps bound to it), then adds `wanted`. */
export function nftEgressGuestScript(cur: EgressRuleset | undefined, ip: string, wanted: EgressGuest | undefined, forgetLearned: boolean): string {
  const lines: string[] = [];
  if (cur !== undefined) {
    const taps = new Set([...cur.guests.filter((g) => g.ip === ip).map((g) => g.tap), ...cur.bound.filter(([, a]) => a === ip).map(([t]) => t)]);
    if (wanted !== undefined) taps.add(wanted.tap);
    if (cur.guests.some((g) => g.ip === ip)) lines.push(`delete element ${T} guests { ${ip} }`);
    if (cur.policed.includes(ip)) lines.push(`delete element ${T} policed { ${ip} }`);
    for (const [g, c] of cur.allow) if (g === ip) lines.push(`delete element ${T} allow { ${g} . ${c} }`);
    if (forgetLearned || wanted?.mode !== "allow") for (const [g, a] of cur.learned) if (g === ip) lines.push(`delete element ${T} learned { ${g} . ${a} }`);
    for (const [t, a] of cur.bound) if (taps.has(t) || a === ip) lines.push(`delete element ${B} bound { "${t}" . ${a} }`);
    for (const t of cur.ports) if (taps.has(t)) lines.push(`delete element ${B} ports { "${t}" }`);
    for (const t of cur.isolated) if (taps.has(t)) lines.push(`delete element ${B} isolated { "${t}" }`);
  }
  if (wanted !== undefined) {
    lines.push(`add element ${T} guests { ${ip} comment "${wanted.tap} ${wanted.mode}" }`);
    if (wanted.mode !== "all") lines.push(`add element ${T} policed { ${ip} }`);
    if (wanted.mode === "allow") for (const c of wanted.cidrs) lines.push(`add element ${T} allow { ${ip} . ${c} }`);
    lines.push(`add element ${B} ports { "${wanted.tap}" }`, `add element ${B} bound { "${wanted.tap}" . ${ip} }`);
    if (wanted.isolate) lines.push(`add element ${B} isolated { "${wanted.tap}" }`);
  }
  return lines.map((l) => `${l}\n`).join("");
}

/**
 * Adds each address with its timeout; one that is already there is deleted and added again in the
 * same transaction, since `add` leaves an existing element's timeout as it was.
 */
export function nftEgressLearnScript(ip: string, addrs: readonly LearnedAddr[]): string {
  return addrs.map((a) => {
    const e = `${ip} . ${a.ip}`;
    return `add element ${T} learned { ${e} }\ndelete element ${T} learned { ${e} }\nadd element ${T} learned { ${e} timeout ${a.ttlS}s }\n`;
  }).join("");
}

interface NftSetJson {
  nftables?: { set?: { name?: unknown; family?: unknown; elem?: unknown[] } }[];
}

/** `a.b.c.d/n` of a set element's address part: a plain address (a /32) or a prefix object. */
function cidrOf(v: unknown): string | undefined {
  if (typeof v === "string") return `${v}/32`;
  const p = (v as { prefix?: { addr?: unknown; len?: unknown } } | null)?.prefix;
  return typeof p?.addr === "string" && typeof p.len === "number" ? `${p.addr}/${p.len}` : undefined;
}

/** The value of an element, unwrapping `{ elem: { val, comment, timeout } }`. */
function unwrap(e: unknown): { val: unknown; comment: string | undefined } {
  const inner = (e as { elem?: { val?: unknown; comment?: unknown } } | null)?.elem;
  if (inner !== undefined && inner !== null && typeof inner === "object") return { val: inner.val, comment: typeof inner.comment === "string" ? inner.comment : undefined };
  return { val: e, comment: undefined };
}

function pair(v: unknown): [unknown, unknown] | undefined {
  const c = (v as { concat?: unknown } | null)?.concat;
  return Array.isArray(c) && c.length === 2 ? [c[0], c[1]] : undefined;
}

/** Parses `nft -j list table inet banger_egress` and `... bridge banger_egress` (either may be empty). Exported for unit tests. */
export function parseNftEgress(inetJson: string, bridgeJson: string): EgressRuleset {
  const r = { guests: [] as { ip: string; tap: string; mode: "all" | "none" | "allow" }[], policed: [] as string[], allow: [] as [string, string][], learned: [] as [string, string][], ports: [] as string[], bound: [] as [string, string][], isolated: [] as string[] };
  for (const json of [inetJson, bridgeJson]) {
    if (json.trim() === "") continue;
    for (const item of (JSON.parse(json) as NftSetJson).nftables ?? []) {
      const set = item.set;
      if (set === undefined) continue;
      for (const raw of set.elem ?? []) {
        const { val, comment } = unwrap(raw);
        const two = pair(val);
        if (set.family === "inet") {
          if (set.name === "guests" && typeof val === "string") {
            const [tap = "", mode] = (comment ?? "").split(" ");
            r.guests.push({ ip: val, tap, mode: mode === "none" || mode === "allow" ? mode : "all" });
          }
          else if (set.name === "policed" && typeof val === "string") r.policed.push(val);
          else if (set.name === "allow" && two !== undefined && typeof two[0] === "string") {
            const c = cidrOf(two[1]);
            if (c !== undefined) r.allow.push([two[0], c]);
          } else if (set.name === "learned" && two !== undefined && typeof two[0] === "string" && typeof two[1] === "string") r.learned.push([two[0], two[1]]);
        } else if (set.family === "bridge") {
          if (set.name === "ports" && typeof val === "string") r.ports.push(val);
          else if (set.name === "isolated" && typeof val === "string") r.isolated.push(val);
          else if (set.name === "bound" && two !== undefined && typeof two[0] === "string" && typeof two[1] === "string") r.bound.push([two[0], two[1]]);
        }
      }
    }
  }
  return r;
}

export function nftEgressBackend(runner: Runner, nft = "nft"): EgressBackend {
  const { apply } = nftTool(runner, nft);
  const list = async (family: string): Promise<string | undefined> => {
    try {
      return (await runner.run([nft, "-j", "list", "table", family, EGRESS_TABLE], { timeoutMs: 10_000 })).stdout.toString("utf8");
    } catch (e) {
      if (e instanceof CommandError && e.exitCode === 1 && /No such file|does not exist/i.test(e.stderr)) return undefined;
      throw e;
    }
  };
  const read = async (): Promise<EgressRuleset | undefined> => {
    const [inet, bridge] = await Promise.all([list("inet"), list("bridge")]);
    // Both or nothing: with one missing the pair is re-created (and its guests registered again).
    if (inet === undefined || bridge === undefined) return undefined;
    return parseNftEgress(inet, bridge);
  };
  const tables = async (): Promise<string[]> => {
    const [inet, bridge] = await Promise.all([list("inet"), list("bridge")]);
    return [...(inet === undefined ? [] : [T]), ...(bridge === undefined ? [] : [B])];
  };
  return {
    kind: "nftables",
    read,
    replaceGuest: (host, cur, ip, wanted, forget) => apply((cur === undefined ? nftEgressCreateScript(host) : "") + nftEgressGuestScript(cur, ip, wanted, forget)),
    learn: (ip, addrs) => apply(nftEgressLearnScript(ip, addrs)),
    async removeAll() {
      const present = await tables();
      if (present.length > 0) await apply(present.map((t) => `delete table ${t}\n`).join(""));
    },
  };
}
