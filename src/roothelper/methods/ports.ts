import { guestRange, ipv4ToInt } from "../../model/ipv4.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import { privListPorts, privSetPorts } from "../../rpc/priv/ports.js";
import type { PeerCred } from "../../system/peercred.js";
import type { HelperEnv } from "../env.js";
import { sysfsMaster } from "../link-master.js";
import { iptablesBackend } from "../nat/iptables.js";
import { nftablesBackend } from "../nat/nftables.js";
import type { NatGuest } from "../nat/types.js";
import { mustBeFree } from "../ports/host-port-check.js";
import { PortsManager, procRouteLocalnet, type PortsManagerDeps } from "../ports/manager.js";
import { nftPortsBackend } from "../ports/nftables.js";
import type { PublishedPort } from "../ports/types.js";
import { ifaceName, intInRange, ipv4, ipv4Cidr, tapName } from "../validate.js";

export interface PortsDeps extends PortsManagerDeps {
  /** The bridge a link is enslaved to, or undefined (no such link, or on none). */
  readonly masterOf: (link: string) => string | undefined;
  /**
   * The helper's own record of which tap each NAT'd guest address is behind (NAT is set up at every
   * boot): the nearest thing the helper has to the owner's leases. Read live, whichever backend holds it.
   */
  readonly natGuests: () => Promise<readonly NatGuest[]>;
}

const toWire = (p: PublishedPort): { host_ip: string; host_port: number; guest_ip: string; guest_port: number; proto: "tcp" | "udp"; tap: string } =>
  ({ host_ip: p.hostIp, host_port: p.hostPort, guest_ip: p.guestIp, guest_port: p.guestPort, proto: p.proto, tap: p.tap });

export function portsMethods(env: HelperEnv, deps: Partial<PortsDeps> = {}): Registration<PeerCred>[] {
  const bridge = ifaceName("network.bridge", env.config.network.bridge);
  const cidr = ipv4Cidr("network.cidr", env.config.network.cidr);
  const range = guestRange(cidr);
  const masterOf = deps.masterOf ?? sysfsMaster;
  const natGuests = deps.natGuests ?? (async (): Promise<readonly NatGuest[]> => {
    for (const b of [nftablesBackend(env.runner), iptablesBackend(env.runner)]) {
      const st = await b.state().catch(() => undefined);
      if (st !== undefined) return st.guests;
    }
    return [];
  });
  const ports = new PortsManager(nftPortsBackend(env.runner), bridge, {
    mustBeFree: deps.mustBeFree ?? ((ip, port, proto) => mustBeFree(env.runner, ip, port, proto)),
    routeLocalnet: deps.routeLocalnet ?? procRouteLocalnet,
  });

  /** The guest address must be a VM of this install: a guest address behind a banger tap on its bridge. */
  const ownersGuest = async (ip: string, tap: string): Promise<void> => {
    if (ipv4ToInt(ip) < range.first || ipv4ToInt(ip) > range.last) throw new RpcError("bad_params", `guest_ip: ${ip} is not a guest address inside ${cidr}`);
    if (masterOf(tap) !== bridge) throw new RpcError("bad_params", `tap: ${tap} is not attached to ${bridge}; ports are published only to a running VM`);
    if (!env.config.network.nat) return;
    const nat = (await natGuests()).find((g) => g.ip === ip);
    if (nat?.tap !== tap) throw new RpcError("bad_params", `guest_ip: ${ip} is not the NAT'd guest behind ${tap} (the helper has ${nat === undefined ? "no guest at that address" : `it behind ${nat.tap}`}); ports are published only to a running VM's own address`);
  };

  return [
    implement(privSetPorts, async (p) => {
      const guestIp = ipv4("guest_ip", p.guest_ip);
      const tap = tapName("tap", p.tap);
      const wanted = p.ports.map((s, i): PublishedPort => {
        const hostIp = ipv4(`ports[${i}].host_ip`, s.host_ip);
        if (hostIp === "0.0.0.0") throw new RpcError("bad_params", `ports[${i}].host_ip: 0.0.0.0 is not supported; name the host address to publish on (127.0.0.1 by default)`);
        const inBridge = ipv4ToInt(hostIp) >= range.first - 1 && ipv4ToInt(hostIp) <= range.last + 1;
        if (inBridge) throw new RpcError("bad_params", `ports[${i}].host_ip: ${hostIp} is inside banger's network ${cidr}; guests reach each other directly`);
        return { hostIp, hostPort: intInRange(`ports[${i}].host_port`, s.host_port, 1, 65535), proto: s.proto, guestIp, guestPort: intInRange(`ports[${i}].guest_port`, s.guest_port, 1, 65535), tap };
      });
      // Unpublishing needs no proof of ownership beyond the address: a stopped VM's tap is already gone.
      if (wanted.length > 0) await ownersGuest(guestIp, tap);
      return { backend: "nftables" as const, ports: (await ports.set(guestIp, wanted)).map(toWire) };
    }),
    implement(privListPorts, async () => ({ ports: (await ports.list()).map(toWire) })),
  ];
}
