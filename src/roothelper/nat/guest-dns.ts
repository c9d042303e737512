import { bridgeIp } from "../../model/ipv4.js";
import type { Config } from "../../config/schema.js";
import type { DnsRedirect } from "./types.js";

/**
 * Where guests' DNS to the bridge address is redirected: the daemon's port on it. Guests' resolver
 * is the bridge address (the daemon's guest files say so); with dns_listen on port 0 the helper
 * cannot know the port, so there is no redirect.
 */
export function guestDnsRedirect(network: Config["network"]): DnsRedirect | undefined {
  const port = Number(network.dns_listen.slice(network.dns_listen.lastIndexOf(":") + 1));
  return port === 0 ? undefined : { gateway: bridgeIp(network.cidr), port };
}
