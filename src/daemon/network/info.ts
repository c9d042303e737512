import type { Config } from "../../config/schema.js";
import { bridgeIp } from "../../model/ipv4.js";
import type { InfoContributor } from "../methods/system.js";

/** `system.info` sections for `banger system status --json`: `network.{bridge,cidr,bridge_ip}` and `dns.address` ("IP:PORT"). */
export function networkInfoContributor(config: Config, dnsAddress: () => string = () => config.network.dns_listen): InfoContributor {
  return () => ({
    network: { bridge: config.network.bridge, cidr: config.network.cidr, bridge_ip: bridgeIp(config.network.cidr) },
    dns: { address: dnsAddress() },
  });
}
