/**
 * A VM's egress policy as the owner writes it: `all`, `none` or `allow=LIST`, LIST a comma-separated
 * list of IPv4 addresses, CIDRs and domain names. A domain allows that name and every name under it
 * (`allow=example.com` also allows `api.example.com`), through the addresses banger's DNS resolves
 * for them. Pure parsing, shared by the CLI (usage errors), the daemon (its own check) and config.
 */

export type EgressPolicy =
  | { readonly mode: "all" }
  | { readonly mode: "none" }
  | { readonly mode: "allow"; readonly cidrs: readonly string[]; readonly domains: readonly string[] };

/** More entries than this is a list nobody reviews; nft copes, people do not. */
export const MAX_EGRESS_ENTRIES = 64;

const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
const CIDR_RE = new RegExp(`^(${OCTET}(\\.${OCTET}){3})(/([0-9]|[12][0-9]|3[0-2]))?$`);
/** Letters, digits and inner hyphens per label, at least two labels, a letter-led last label (so no IP). */
const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const EGRESS_USAGE = "want all, none or allow=LIST (LIST: comma-separated IPv4 addresses, CIDRs and domain names; a domain also allows its subdomains), e.g. allow=deb.debian.org,10.0.0.0/8";

/** `a.b.c.d/n` with the host bits clear (a bare address is /32), or a sentence saying what is wrong. */
export function parseEgressCidr(text: string): string | { error: string } {
  const m = CIDR_RE.exec(text);
  if (m === null) return { error: `${JSON.stringify(text)} is not an IPv4 address or CIDR` };
  const addr = m[1] ?? "";
  const prefix = m[6] === undefined ? 32 : Number(m[6]);
  const n = addr.split(".").reduce((acc, p) => acc * 256 + Number(p), 0);
  const size = 2 ** (32 - prefix);
  const network = Math.floor(n / size) * size;
  if (network !== n) {
    const net = [24, 16, 8, 0].map((s) => Math.floor(network / 2 ** s) % 256).join(".");
    return { error: `${JSON.stringify(text)} has bits set beyond its /${prefix} prefix; did you mean ${net}/${prefix}?` };
  }
  return `${addr}/${prefix}`;
}

/** The policy, or a sentence saying what is wrong and what a good one looks like. */
export function parseEgress(text: string): EgressPolicy | { error: string } {
  if (text === "all" || text === "none") return { mode: text };
  if (!text.startsWith("allow=")) return { error: `${JSON.stringify(text)} is not an egress policy; ${EGRESS_USAGE}` };
  const entries = text.slice("allow=".length).split(",");
  if (entries.length > MAX_EGRESS_ENTRIES) return { error: `allow= lists ${entries.length} entries; at most ${MAX_EGRESS_ENTRIES}` };
  const cidrs: string[] = [];
  const domains: string[] = [];
  for (const raw of entries) {
    const e = raw.toLowerCase().replace(/\.$/, "");
    if (e === "") return { error: `allow= has an empty entry; ${EGRESS_USAGE}` };
    if (/^[0-9./]+$/.test(e)) {
      const c = parseEgressCidr(e);
      if (typeof c !== "string") return c;
      if (!cidrs.includes(c)) cidrs.push(c);
    } else if (e.startsWith("*.")) {
      return { error: `${JSON.stringify(raw)}: write the domain without "*." (${e.slice(2)} already allows every name under it)` };
    } else if (DOMAIN_RE.test(e)) {
      if (!domains.includes(e)) domains.push(e);
    } else {
      return { error: `${JSON.stringify(raw)} is neither an IPv4 address, a CIDR nor a domain name (letters, digits, hyphens, at least two labels)` };
    }
  }
  return { mode: "allow", cidrs, domains };
}

/** The text parseEgress reads back: what is stored and shown. */
export function formatEgress(p: EgressPolicy): string {
  return p.mode === "allow" ? `allow=${[...p.cidrs.map((c) => c.endsWith("/32") ? c.slice(0, -3) : c), ...p.domains].join(",")}` : p.mode;
}

/** Whether `name` (any case, trailing dot or not) is one of `domains` or under one. */
export function domainAllowed(domains: readonly string[], name: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, "");
  return domains.some((d) => n === d || n.endsWith(`.${d}`));
}
