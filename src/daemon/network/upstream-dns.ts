import { readFileSync } from "node:fs";

/**
 * Which resolvers a guest gets. A guest can only use servers it can reach
 * through NAT, so loopback stubs (127.0.0.53 of systemd-resolved, 127.0.0.1 of
 * dnsmasq/unbound) are useless inside it. Order:
 *  1. config network.upstream_dns when set;
 *  2. the non-loopback IPv4 `nameserver`s of the host's /etc/resolv.conf;
 *  3. when that only holds a loopback stub, systemd-resolved's own upstream
 *     list /run/systemd/resolve/resolv.conf (the servers the stub forwards to);
 *  4. otherwise none, with a warning: the guest then has no resolver rather
 *     than one it cannot reach (and the user is told to set upstream_dns).
 * No public resolver is ever chosen silently: where a host's DNS goes is the host owner's decision.
 */
export interface UpstreamDns {
  readonly servers: readonly string[];
  readonly source: "config" | "resolv.conf" | "systemd-resolved" | "none";
  readonly warning?: string;
}

const IPV4_RE = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;

/** IPv4 nameservers of a resolv.conf text (guests have IPv4 only), loopback ones dropped unless `keepLoopback`. */
export function parseNameservers(text: string, keepLoopback = false): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key !== "nameserver" || value === undefined || !IPV4_RE.test(value) || (!keepLoopback && value.startsWith("127.")) || value === "0.0.0.0") continue;
    if (!out.includes(value)) out.push(value);
  }
  return out;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

export function upstreamDns(configured: readonly string[] | undefined, files = { resolvConf: "/etc/resolv.conf", resolvedConf: "/run/systemd/resolve/resolv.conf" }): UpstreamDns {
  if (configured !== undefined && configured.length > 0) return { servers: [...configured], source: "config" };
  const host = parseNameservers(readOrEmpty(files.resolvConf));
  if (host.length > 0) return { servers: host, source: "resolv.conf" };
  const resolved = parseNameservers(readOrEmpty(files.resolvedConf));
  if (resolved.length > 0) return { servers: resolved, source: "systemd-resolved" };
  return {
    servers: [],
    source: "none",
    warning: `no upstream DNS server reachable from guests (${files.resolvConf} has only loopback or no nameservers); set network.upstream_dns in the banger config`,
  };
}

/**
 * Where banger's DNS server relays names outside `.vm` (guests' resolver is
 * the bridge address): network.upstream_dns when set, else the host's own
 * resolvers, loopback stubs included (the daemon, on the host, does the
 * forwarding, so 127.0.0.53 of systemd-resolved works), else
 * systemd-resolved's upstream list. Port 53 each.
 */
export function forwardUpstreams(configured: readonly string[] | undefined, files = { resolvConf: "/etc/resolv.conf", resolvedConf: "/run/systemd/resolve/resolv.conf" }): { host: string; port: number }[] {
  const servers = configured !== undefined && configured.length > 0 ? configured : [parseNameservers(readOrEmpty(files.resolvConf), true), parseNameservers(readOrEmpty(files.resolvedConf), true)].find((l) => l.length > 0) ?? [];
  return servers.map((host) => ({ host, port: 53 }));
}

/**
 * Whether guests can use banger's DNS server on the bridge address: the root helper redirects their
 * port 53 there with its NAT rules, which exist only with NAT on, to a fixed port.
 */
export function guestsUseBangerDns(network: { readonly nat: boolean; readonly dns_listen: string }): boolean {
  return network.nat && !network.dns_listen.endsWith(":0");
}
