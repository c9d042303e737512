import { bridgeIp, guestRange, ipv4ToInt } from "../../model/ipv4.js";
import { parseEgressCidr } from "../../model/egress.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import { privLearnEgress, privListEgress, privSetEgress } from "../../rpc/priv/egress.js";
import type { PeerCred } from "../../system/peercred.js";
import type { HelperEnv } from "../env.js";
import { EgressManager } from "../egress/manager.js";
import { nftEgressBackend } from "../egress/nftables.js";
import type { EgressBackend } from "../egress/types.js";
import { sysfsMaster } from "../link-master.js";
import { guestDnsRedirect } from "../nat/guest-dns.js";
import { ifaceName, intInRange, ipv4, ipv4Cidr, tapName } from "../validate.js";

/** How long a learned address may stay allowed; the daemon clamps DNS TTLs well inside this. */
const MAX_LEARN_TTL_S = 86_400;

export interface EgressDeps {
  /** The bridge a link is enslaved to, or undefined. */
  readonly masterOf: (link: string) => string | undefined;
  readonly backend: EgressBackend;
}

export function egressMethods(env: HelperEnv, deps: Partial<EgressDeps> = {}): Registration<PeerCred>[] {
  const bridge = ifaceName("network.bridge", env.config.network.bridge);
  const cidr = ipv4Cidr("network.cidr", env.config.network.cidr);
  const range = guestRange(cidr);
  const masterOf = deps.masterOf ?? sysfsMaster;
  const egress = new EgressManager(deps.backend ?? nftEgressBackend(env.runner), {
    bridge,
    gateway: bridgeIp(cidr),
    dnsPort: guestDnsRedirect(env.config.network)?.port,
    protectHost: env.config.network.protect_host,
  });

  const guestIp = (field: string, value: string): string => {
    const ip = ipv4(field, value);
    if (ipv4ToInt(ip) < range.first || ipv4ToInt(ip) > range.last) throw new RpcError("bad_params", `${field}: ${ip} is not a guest address inside ${cidr}`);
    return ip;
  };

  return [
    implement(privSetEgress, async (p) => {
      const ip = guestIp("guest_ip", p.guest_ip);
      const tap = tapName("tap", p.tap);
      if (p.mode !== "allow" && p.cidrs.length > 0) throw new RpcError("bad_params", `cidrs: only an allow policy lists CIDRs (mode is ${p.mode})`);
      const cidrs = p.cidrs.map((c, i) => {
        const parsed = parseEgressCidr(c);
        if (typeof parsed !== "string" || parsed !== c) throw new RpcError("bad_params", `cidrs[${i}]: ${JSON.stringify(c)} is not an IPv4 CIDR a.b.c.d/n with its host bits clear`);
        return parsed;
      });
      if (new Set(cidrs).size !== cidrs.length) throw new RpcError("bad_params", "cidrs: a CIDR is listed twice");
      // Removing needs no proof of a running VM: a stopped VM's tap is already gone. Registering
      // only restricts the guest, so a tap on banger's bridge is all the proof it needs.
      if (!p.remove && masterOf(tap) !== bridge) throw new RpcError("bad_params", `tap: ${tap} is not attached to ${bridge}; egress is set only for a VM whose tap exists`);
      const guests = await egress.set(ip, p.remove ? undefined : { ip, tap, mode: p.mode, cidrs, isolate: p.isolate }, p.forget_learned || p.remove);
      return { backend: "nftables" as const, guests };
    }),
    implement(privLearnEgress, async (p) => {
      const ip = guestIp("guest_ip", p.guest_ip);
      const addrs = p.addrs.map((a, i) => ({ ip: ipv4(`addrs[${i}].ip`, a.ip), ttlS: intInRange(`addrs[${i}].ttl_s`, a.ttl_s, 1, MAX_LEARN_TTL_S) }));
      return { learned: await egress.learn(ip, addrs) };
    }),
    implement(privListEgress, async () => ({ guests: (await egress.list()).map((g) => ({ guest_ip: g.ip, tap: g.tap, mode: g.mode, cidrs: [...g.cidrs], isolate: g.isolate, learned: g.learned })) })),
  ];
}
