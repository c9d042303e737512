import { existsSync } from "node:fs";
import { bridgeIp, parseCidr } from "../../model/ipv4.js";
import { privCreateTap, privDeleteTap, privEnsureBridge, privEnsureNat, privNetworkStatus, privRemoveNatAll } from "../../rpc/priv/network.js";
import type { DaemonEnv } from "../env.js";
import type { Lease, NetworkDeps } from "../vm/deps.js";
import { allocateLease, getLease, poolTapName, releaseLease } from "./lease.js";
import { guestsUseBangerDns, upstreamDns } from "./upstream-dns.js";

export interface NetworkService extends NetworkDeps {
  /** Pre-creates `tap-pool-0..N-1` (network.tap_pool_size) so creates skip tap setup. */
  ensureTapPool(opId: string): Promise<string[]>;
}

const isPoolTap = (tap: string): boolean => tap.startsWith("tap-pool-");

/**
 * The daemon's side of host networking: leases live in the state store, every
 * privileged step goes to the root helper with the caller's op id.
 */
export function networkService(env: DaemonEnv, opts: { linkExists?: (name: string) => boolean } = {}): NetworkService {
  const cidr = env.config.network.cidr;
  const prefix = parseCidr(cidr).prefix;
  const gateway = bridgeIp(cidr);
  // Unprivileged read of sysfs: enough to know whether a pool tap is already there.
  const linkExists = opts.linkExists ?? ((name: string) => existsSync(`/sys/class/net/${name}`));

  const toLease = (row: { ip: string; mac: string; tap: string; cid: number }): Lease => {
    // banger's DNS answers peers' NAME.vm and relays the rest; without it guests get the upstreams themselves.
    if (guestsUseBangerDns(env.config.network)) return { ip: row.ip, mac: row.mac, tap: row.tap, cid: row.cid, prefix, gateway, nameservers: [gateway] };
    const dns = upstreamDns(env.config.network.upstream_dns);
    if (dns.warning !== undefined) env.logger.warn(dns.warning);
    return { ip: row.ip, mac: row.mac, tap: row.tap, cid: row.cid, prefix, gateway, nameservers: dns.servers };
  };

  const removeNat = async (lease: Lease, opId: string): Promise<void> => {
    if (env.config.network.nat) await env.helper.call(privEnsureNat, { guest_ip: lease.ip, tap: lease.tap, enable: false }, opId);
  };

  const mustHold = (vmId: string, lease: Lease): void => {
    const held = getLease(env.db, vmId);
    if (held === undefined || held.ip !== lease.ip || held.tap !== lease.tap) {
      throw new Error(`VM ${vmId} does not hold lease ${lease.ip}/${lease.tap} in the state store; refusing to wire someone else's address`);
    }
  };

  const detach = async (lease: Lease, opId: string): Promise<void> => {
    const errors: unknown[] = [];
    await removeNat(lease, opId).catch((e: unknown) => errors.push(e));
    // Pool taps outlive their VMs: that is the pool's point.
    if (!isPoolTap(lease.tap)) await env.helper.call(privDeleteTap, { tap_name: lease.tap }, opId).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, `detaching ${lease.tap} (${lease.ip}) from the host network failed`);
  };

  return {
    lease(vmId) {
      return Promise.resolve(toLease(allocateLease(env.db, vmId, { cidr, tapPoolSize: env.config.network.tap_pool_size })));
    },

    release(vmId) {
      releaseLease(env.db, vmId);
      return Promise.resolve();
    },

    async attach(vmId, lease, opId) {
      mustHold(vmId, lease);
      // create_tap makes sure of the bridge itself (and removes a tap it could not attach); a pool tap
      // that is already there skips it, so check the bridge then.
      await (isPoolTap(lease.tap) && linkExists(lease.tap) ? env.helper.call(privEnsureBridge, {}, opId) : env.helper.call(privCreateTap, { tap_name: lease.tap }, opId));
    },

    async addNat(vmId, lease, opId) {
      if (!env.config.network.nat) return;
      mustHold(vmId, lease);
      try {
        await env.helper.call(privEnsureNat, { guest_ip: lease.ip, tap: lease.tap, enable: true }, opId);
      } catch (e) {
        // A failed step is not undone by the create's cleanup stack (only completed steps are), and a
        // backend that runs several commands (iptables) can fail half-way: take down what did land.
        const cleanup = await removeNat(lease, opId).then((): unknown[] => [], (c: unknown) => [c]);
        throw cleanup.length === 0 ? e : new AggregateError([e, ...cleanup], `adding NAT for ${lease.ip} (${lease.tap}) failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    },

    removeNat: (_vmId, lease, opId) => removeNat(lease, opId),

    detach: (_vmId, lease, opId) => detach(lease, opId),

    async hostView(opId) {
      const st = await env.helper.call(privNetworkStatus, {}, opId);
      const size = env.config.network.tap_pool_size;
      const pooled = new Set(Array.from({ length: size }, (_, i) => poolTapName(i)));
      return { taps: st.taps.filter((t) => !pooled.has(t)), natGuests: st.nat.guests, natInstalled: st.nat.backend !== null };
    },

    async deleteTap(tap, opId) {
      await env.helper.call(privDeleteTap, { tap_name: tap }, opId);
    },

    async removeNatGuest(guest, opId) {
      await env.helper.call(privEnsureNat, { guest_ip: guest.ip, tap: guest.tap, enable: false }, opId);
    },

    async removeAllNat(opId) {
      await env.helper.call(privRemoveNatAll, {}, opId);
    },

    async ensureTapPool(opId) {
      const created: string[] = [];
      const size = env.config.network.tap_pool_size;
      if (size === 0) return created;
      await env.helper.call(privEnsureBridge, {}, opId);
      for (let i = 0; i < size; i++) {
        const tap = poolTapName(i);
        if (linkExists(tap)) continue;
        await env.helper.call(privCreateTap, { tap_name: tap }, opId);
        created.push(tap);
      }
      return created;
    },
  };
}
