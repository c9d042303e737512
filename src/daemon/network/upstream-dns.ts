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

/** IPv4 nameservers of a resolv.conf text, loopback ones dropped (guests have IPv4 only). */
export function parseNameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key !== "nameserver" || value === undefined || !IPV4_RE.test(value) || value.startsWith("127.") || value === "0.0.0.0") continue;
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
