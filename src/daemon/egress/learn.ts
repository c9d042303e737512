import dnsPacket from "dns-packet";

/**
 * How long an address banger's DNS resolved for an allowed name stays allowed: the record's TTL,
 * but at least MIN (guests that resolve and connect seconds apart, and records with TTLs of a few
 * seconds, would otherwise race the expiry) and at most MAX (an address a name left is not allowed
 * for long after). Connections already open outlive the element (replies are accepted by state).
 */
export const LEARN_TTL_MIN_S = 60;
export const LEARN_TTL_MAX_S = 3600;

const IPV4_RE = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;

export function clampTtl(ttl: number): number {
  return Math.min(LEARN_TTL_MAX_S, Math.max(LEARN_TTL_MIN_S, Number.isFinite(ttl) ? Math.floor(ttl) : 0));
}

/**
 * The IPv4 addresses of every A record in a reply's answer section, each with its clamped TTL (the
 * longest when one appears twice). A CNAME chain's A records carry the target's name: they are the
 * answer to the question all the same, which is what the caller checked. Undecodable: none.
 */
export function addressesIn(reply: Buffer): { ip: string; ttlS: number }[] {
  let res: dnsPacket.DecodedPacket;
  try {
    res = dnsPacket.decode(reply);
  } catch {
    return [];
  }
  if (res.type !== "response") return [];
  const out = new Map<string, number>();
  for (const a of res.answers ?? []) {
    if (a.type !== "A" || typeof a.data !== "string" || !IPV4_RE.test(a.data)) continue;
    const ttl = clampTtl(a.ttl ?? 0);
    out.set(a.data, Math.max(ttl, out.get(a.data) ?? 0));
  }
  return [...out].map(([ip, ttlS]) => ({ ip, ttlS }));
}
