import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { invalidHostEntries } from "../../model/hosts-block.js";
import { bridgeIp, guestRange, ipv4ToInt, parseCidr } from "../../model/ipv4.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import {
  privCreateTap,
  privDeleteTap,
  privEnsureBridge,
  privEnsureNat,
  privNetworkStatus,
  privRemoveNatAll,
  privSyncHosts,
  privTeardownNetwork,
} from "../../rpc/priv/network.js";
import type { PeerCred } from "../../system/peercred.js";
import { CommandError, type Runner } from "../../system/runner.js";
import type { HelperEnv } from "../env.js";
import { chooseHostDns } from "../host-dns.js";
import { guestDnsRedirect } from "../nat/guest-dns.js";
import { procIpForward, type IpForward } from "../nat/ip-forward.js";
import { iptablesBackend } from "../nat/iptables.js";
import { NatManager } from "../nat/manager.js";
import { nftablesBackend } from "../nat/nftables.js";
import { ioctlLinks, type LinkOps } from "../netdev.js";
import { ifaceName, ipv4, ipv4Cidr, ipv4Port, tapName } from "../validate.js";

/** Routing domain handed to systemd-resolved: only `*.vm` queries go to banger's DNS server. */
const RESOLVER_ROUTE_DOMAIN = "~vm";
const NEIGH_RETRANS_MS = 100;
const NEIGH_SOLICIT = 30;
const TAP_NAME_RE = /^tap-(fc-[0-9a-f]{8}|pool-[0-9]{1,4})$/;

/** Seams for tests; production uses the real host. */
export interface NetworkDeps {
  readonly ipForward: IpForward;
  /** Sets how the kernel resolves guests' addresses on the bridge (see fastNeighbourProbing). */
  readonly tuneNeighbours: (bridge: string) => Promise<void>;
  /** Why resolver routing cannot be applied here, or undefined when systemd-resolved is usable. */
  readonly resolverUnavailable: () => string | undefined;
  /** In-process link queries and the tap create path; they act on this process's network namespace. */
  readonly links: LinkOps;
}

function defaultResolverCheck(): string | undefined {
  // resolvectl alone is not enough: it is installed on hosts where systemd-resolved is not running.
  if (!["/usr/bin/resolvectl", "/bin/resolvectl"].some((p) => existsSync(p))) return "resolvectl is not installed (no systemd-resolved)";
  if (!existsSync("/run/systemd/resolve/io.systemd.Resolve")) return "systemd-resolved is not running";
  return undefined;
}

/**
 * ARP on banger's bridge every 100 ms, 30 times, instead of the kernel's default of every second,
 * 3 times. The daemon waits for a booting guest with one pending connect: the kernel keeps asking
 * for the guest's address on its own and sends the SYN the moment the guest answers, so readiness
 * is seen within ~100 ms of the guest's network coming up while the daemon wakes only every ~3 s
 * per VM. The settings live and die with the bridge (per-interface sysctls).
 */
async function fastNeighbourProbing(bridge: string): Promise<void> {
  const dir = `/proc/sys/net/ipv4/neigh/${bridge}`;
  await writeFile(`${dir}/retrans_time_ms`, `${NEIGH_RETRANS_MS}\n`);
  await writeFile(`${dir}/mcast_solicit`, `${NEIGH_SOLICIT}\n`);
}

export function networkMethods(env: HelperEnv, deps: Partial<NetworkDeps> = {}): Registration<PeerCred>[] {
  const runner = env.runner;
  // The bridge and CIDR are the helper's own configuration; requests can never move them.
  const bridge = ifaceName("network.bridge", env.config.network.bridge);
  const cidr = ipv4Cidr("network.cidr", env.config.network.cidr);
  const net = parseCidr(cidr);
  const gateway = bridgeIp(cidr);
  const want = `${gateway}/${net.prefix}`;
  const resolverUnavailable = deps.resolverUnavailable ?? defaultResolverCheck;
  const tuneNeighbours = deps.tuneNeighbours ?? fastNeighbourProbing;
  const links = deps.links ?? ioctlLinks;
  const hostDns = chooseHostDns(env.config.network.host_dns, resolverUnavailable(), env.config.network.dns_listen);
  const dns = guestDnsRedirect(env.config.network);
  const nat = new NatManager([nftablesBackend(runner, "nft", dns), iptablesBackend(runner, "iptables", dns)], env.config.network.nat_backend, deps.ipForward ?? procIpForward(), () => bridge);

  const matchesConfig = (p: { bridge_name?: string | undefined; cidr?: string | undefined }): void => {
    if (p.bridge_name !== undefined && p.bridge_name !== bridge) {
      throw new RpcError("bad_params", `bridge_name: ${JSON.stringify(p.bridge_name)} is not the configured bridge ${JSON.stringify(bridge)}; the helper only manages its own bridge`);
    }
    if (p.cidr !== undefined && p.cidr !== cidr) {
      throw new RpcError("bad_params", `cidr: ${JSON.stringify(p.cidr)} is not the configured network ${cidr}; change network.cidr in the config and restart the helper`);
    }
  };

  // create_tap runs this on every VM create, so the common case (bridge up with banger's address
  // as its primary one) is answered by ioctls in this process; anything else forks `ip` to check
  // every address and fix what is wrong.
  // Concurrent creates on a fresh host all find the bridge missing; they share one check-and-fix
  // rather than racing to `ip link add` it (the loser would fail with "File exists"), and a check
  // made while a fix is under way waits for it instead of acting on a half-configured bridge.
  let bridgeInFlight: Promise<boolean> | undefined;
  // The neighbour sysctls and systemd-resolved's per-link settings live on the bridge and die with
  // it; re-created, it has a new ifindex. Applying them once per ifindex keeps /proc writes and
  // resolvectl off every create while still re-applying them to a bridge someone deleted and
  // re-created behind the helper's back.
  let tunedIfindex: number | undefined;
  let resolver: { applied: boolean; reason?: string } = { applied: false, reason: "the bridge has not been set up yet" };
  const ensureBridge = async (): Promise<boolean> => {
    let st = bridgeInFlight === undefined ? links.bridgeState(bridge) : undefined;
    let created = false;
    if (st === undefined || !st.up || st.cidr !== want) {
      bridgeInFlight ??= fixBridge().finally(() => { bridgeInFlight = undefined; });
      created = await bridgeInFlight;
      st = links.bridgeState(bridge);
    }
    if (st !== undefined && st.ifindex !== tunedIfindex) {
      await tuneNeighbours(bridge);
      resolver = await routeVmDomain();
      tunedIfindex = st.ifindex;
    }
    return created;
  };
  // Host lookups of NAME.vm go to banger's DNS through systemd-resolved when it runs. The server is
  // the helper's own configured address, never a request's. Routing first: once the bridge has a
  // DNS server, a link without `~vm` and with a default route would answer every host lookup, so
  // it never gets one before that is ruled out. A failure costs only host-side name lookups, so
  // it is reported (ensure_bridge's `resolver`), not fatal to the create that set up the bridge.
  const routeVmDomain = async (): Promise<{ applied: boolean; reason?: string }> => {
    const configured = env.config.network.dns_listen;
    if (hostDns.mode !== "resolved") return { applied: false, reason: `network.host_dns is ${hostDns.mode}${hostDns.reason === undefined ? "" : ` (${hostDns.reason})`}` };
    const direct = `NAME.vm resolves only by querying ${configured} directly`;
    // Port 0 (the daemon binds whichever port is free, which the helper cannot know) or no resolved: chooseHostDns says which.
    if (hostDns.reason !== undefined) return { applied: false, reason: `${hostDns.reason}; ${direct}` };
    try {
      const server = ipv4Port("network.dns_listen", configured);
      await runner.run(["resolvectl", "domain", bridge, RESOLVER_ROUTE_DOMAIN]);
      await runner.run(["resolvectl", "default-route", bridge, "no"]);
      await runner.run(["resolvectl", "dns", bridge, server]);
      return { applied: true };
    } catch (e) {
      return { applied: false, reason: `${e instanceof Error ? e.message : String(e)}; ${direct}` };
    }
  };
  // `ip -j addr show` rather than bridgeState: it lists every address, so one that is present but
  // not primary is not added a second time (which would fail with "File exists").
  const fixBridge = async (): Promise<boolean> => {
    let link = await bridgeLink(runner, bridge);
    let created = false;
    if (link === undefined) {
      await runner.run(["ip", "link", "add", "name", bridge, "type", "bridge"]);
      created = true;
      link = { up: false, addresses: [] };
    }
    if (!link.addresses.includes(want)) await runner.run(["ip", "addr", "add", want, "dev", bridge]);
    if (!link.up) await runner.run(["ip", "link", "set", bridge, "up"]);
    return created;
  };

  // This install's taps: banger-named and on its bridge, or on none and owned by its owner (a create
  // cut off between making the tap and attaching it). Other installs on the host use the same names
  // on their own bridges, for their own owners: neither status nor teardown may count theirs.
  const listTaps = async (): Promise<string[]> => {
    const all = JSON.parse((await runner.run(["ip", "-j", "-d", "link", "show"])).stdout.toString("utf8") || "[]") as { ifname?: unknown; master?: unknown; linkinfo?: { info_data?: { user?: unknown } } }[];
    const ours = (l: (typeof all)[number]): boolean => l.master === undefined ? l.linkinfo?.info_data?.user === env.ownerUid : l.master === bridge;
    return all.filter(ours).map((l) => l.ifname).filter((n): n is string => typeof n === "string" && TAP_NAME_RE.test(n)).sort();
  };

  // Deleting the bridge drops resolved's per-link settings too; reverting first says so in `removed`.
  const clearResolver = async (): Promise<boolean> => {
    if (resolverUnavailable() !== undefined || !links.exists(bridge)) return false;
    await runner.run(["resolvectl", "revert", bridge]);
    return true;
  };

  const deleteTap = async (tap: string): Promise<boolean> => {
    if (!links.exists(tap)) return false;
    await runner.run(["ip", "link", "del", tap]);
    return true;
  };

  return [
    implement(privEnsureBridge, async (p) => {
      matchesConfig(p);
      const created = await ensureBridge();
      return { bridge, cidr, bridge_ip: gateway, created, resolver };
    }),

    implement(privCreateTap, async (p) => {
      const tap = tapName("tap_name", p.tap_name);
      await ensureBridge();
      // Re-create rather than adopt: a leftover tap may belong to another uid or be attached elsewhere.
      await deleteTap(tap);
      links.createTap(tap, env.ownerUid, env.ownerGid);
      try {
        links.attachUp(tap, bridge);
      } catch (e) {
        const errors: unknown[] = [e];
        await runner.run(["ip", "link", "del", tap]).catch((u: unknown) => errors.push(u));
        throw errors.length === 1 ? e : new AggregateError(errors, `attaching ${tap} to ${bridge} failed`);
      }
      return { tap, owner_uid: env.ownerUid, bridge };
    }),

    implement(privDeleteTap, async (p) => {
      const tap = tapName("tap_name", p.tap_name);
      return { tap, deleted: await deleteTap(tap) };
    }),

    implement(privEnsureNat, async (p) => {
      const ip = ipv4("guest_ip", p.guest_ip);
      const tap = tapName("tap", p.tap);
      const range = guestRange(cidr);
      // Network, bridge (first host) and broadcast are never guests; anything outside the bridge network is not ours to NAT.
      if (ipv4ToInt(ip) < range.first || ipv4ToInt(ip) > range.last) throw new RpcError("bad_params", `guest_ip: ${ip} is not a guest address inside ${cidr}`);
      const r = p.enable ? await nat.enable({ ip, tap }) : await nat.disable(ip);
      return { backend: (await nat.backend()).kind, changed: r.changed, ip_forward_enabled_by_banger: r.ipForwardOwned };
    }),

    implement(privNetworkStatus, async () => {
      const st = await nat.status();
      return {
        bridge,
        bridge_exists: links.exists(bridge),
        host_dns: hostDns,
        taps: await listTaps(),
        nat: { backend: st.backend, guests: [...st.guests], ip_forward_enabled_by_banger: st.ipForwardOwned },
      };
    }),

    implement(privRemoveNatAll, async () => ({ removed: await nat.removeAll() })),

    implement(privTeardownNetwork, async () => {
      const removed: string[] = [];
      const errors: unknown[] = [];
      const step = async (fn: () => Promise<void>): Promise<void> => {
        try {
          await fn();
        } catch (e) {
          errors.push(e);
        }
      };
      await step(async () => { removed.push(...(await nat.removeAll()).map((k) => `nat:${k}`)); });
      await step(async () => { if (await clearResolver()) removed.push("resolver"); });
      // This owner's block in the hosts file goes too (other owners' blocks and every other line stay).
      await step(async () => { if (hostDns.mode === "hosts" && env.hostsFile !== undefined && (await env.hostsFile.sync(env.ownerUid, []))) removed.push("hosts"); });
      let taps: string[] = [];
      await step(async () => { taps = await listTaps(); });
      for (const tap of taps) await step(async () => { if (await deleteTap(tap)) removed.push(tap); });
      await step(async () => {
        if (links.exists(bridge)) {
          await runner.run(["ip", "link", "del", bridge]);
          removed.push(bridge);
        }
      });
      tunedIfindex = undefined;
      if (errors.length > 0) throw new AggregateError(errors, `network teardown failed (${errors.length} step(s)); removed: ${removed.join(", ") || "nothing"}`);
      return { removed };
    }),

    implement(privSyncHosts, async (p) => {
      const range = guestRange(cidr);
      const why = invalidHostEntries(p.entries, (ip) => {
        try {
          return ipv4ToInt(ip) >= range.first && ipv4ToInt(ip) <= range.last;
        } catch {
          return false;
        }
      });
      if (why !== undefined) throw new RpcError("bad_params", why);
      if (hostDns.mode !== "hosts" || env.hostsFile === undefined) return { mode: hostDns.mode, written: false, entries: p.entries.length };
      return { mode: hostDns.mode, written: await env.hostsFile.sync(env.ownerUid, p.entries), entries: p.entries.length };
    }),
  ];
}

/** The bridge's admin state and IPv4 addresses (`a.b.c.d/len`), or undefined when it does not exist. */
async function bridgeLink(runner: Runner, dev: string): Promise<{ up: boolean; addresses: string[] } | undefined> {
  let out: string;
  try {
    // Not `-4`: that filter drops a bridge without IPv4 addresses from the output, as if it did not exist.
    out = (await runner.run(["ip", "-j", "addr", "show", "dev", dev])).stdout.toString("utf8");
  } catch (e) {
    if (e instanceof CommandError && /does not exist|Cannot find device/i.test(e.stderr)) return undefined;
    throw e;
  }
  const links = JSON.parse(out || "[]") as { flags?: unknown; addr_info?: { family?: unknown; local?: unknown; prefixlen?: unknown }[] }[];
  if (links.length === 0) return undefined;
  return {
    up: links.some((l) => Array.isArray(l.flags) && l.flags.includes("UP")),
    addresses: links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${String(a.local)}/${String(a.prefixlen)}`)),
  };
}
