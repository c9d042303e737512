import type { Config } from "../config/schema.js";

export type HostDnsMode = "resolved" | "hosts" | "none";

/**
 * Which way the host resolves NAME.vm (network.host_dns), decided once when
 * the helper starts. auto takes systemd-resolved when it runs and banger's
 * DNS has a fixed port to route to, else the hosts file: a host always gets
 * one of them unless the config says none. `reason` says why resolved was
 * not taken, or why the chosen mode cannot work.
 */
export function chooseHostDns(configured: Config["network"]["host_dns"], resolverUnavailable: string | undefined, dnsListen: string): { mode: HostDnsMode; reason?: string } {
  const noPort = dnsListen.endsWith(":0") ? `network.dns_listen ${dnsListen} has no fixed port for systemd-resolved to route to` : undefined;
  const resolvedWhy = resolverUnavailable ?? noPort;
  switch (configured) {
    case "none":
      return { mode: "none", reason: "network.host_dns is none: NAME.vm resolves on the host only by querying banger's DNS directly" };
    case "hosts":
      return { mode: "hosts" };
    case "resolved":
      return resolvedWhy === undefined ? { mode: "resolved" } : { mode: "resolved", reason: resolvedWhy };
    case "auto":
      return resolvedWhy === undefined ? { mode: "resolved" } : { mode: "hosts", reason: `${resolvedWhy}; using the hosts file` };
  }
}
