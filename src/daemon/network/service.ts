import { existsSync } from "node:fs";
import { bridgeIp, parseCidr } from "../../model/ipv4.js";
import { privCreateTap, privDeleteTap, privEnsureBridge, privEnsureNat } from "../../rpc/priv/network.js";
import type { DaemonEnv } from "../env.js";
import type { Lease, NetworkDeps } from "../vm/deps.js";
import { allocateLease, getLease, poolTapName, releaseLease } from "./lease.js";
import { upstreamDns } from "./upstream-dns.js";

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
    const dns = upstreamDns(env.config.network.upstream_dns);
    if (dns.warning !== undefined) env.logger.warn(dns.warning);
    return { ip: row.ip, mac: row.mac, tap: row.tap, cid: row.cid, prefix, gateway, nameservers: dns.servers };
  };

  const detach = async (lease: Lease, opId: string): Promise<void> => {
    const errors: unknown[] = [];
    if (env.config.network.nat) await env.helper.call(privEnsureNat, { guest_ip: lease.ip, tap: lease.tap, enable: false }, opId).catch((e: unknown) => errors.push(e));
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
      const held = getLease(env.db, vmId);
      if (held === undefined || held.ip !== lease.ip || held.tap !== lease.tap) {
        throw new Error(`VM ${vmId} does not hold lease ${lease.ip}/${lease.tap} in the state store; refusing to wire someone else's address`);
      }
      // create_tap makes sure of the bridge itself; a pool tap that is already there skips it, so check the bridge then.
      const tap = isPoolTap(lease.tap) && linkExists(lease.tap) ? env.helper.call(privEnsureBridge, {}, opId) : env.helper.call(privCreateTap, { tap_name: lease.tap }, opId);
      // NAT rules name the tap and the guest address, not a live link, so both go at once: the tap is
      // made by ioctl in a millisecond while NAT waits on an nft run.
      const nat = env.config.network.nat ? env.helper.call(privEnsureNat, { guest_ip: lease.ip, tap: lease.tap, enable: true }, opId) : undefined;
      const failures: unknown[] = (await Promise.allSettled([tap, nat])).flatMap((o): unknown[] => (o.status === "rejected" ? [o.reason] : []));
      if (failures.length === 0) return;
      // A failed attach is not undone by the create's cleanup stack (only completed steps are), so take
      // down whichever half did succeed here; detach is idempotent about the half that did not.
      const cleanup = await detach(lease, opId).then((): unknown[] => [], (e: unknown) => [e]);
      throw failures.length + cleanup.length === 1 ? failures[0] : new AggregateError([...failures, ...cleanup], `attaching ${lease.tap} (${lease.ip}) failed: ${failures.map((f) => (f instanceof Error ? f.message : String(f))).join("; ")}`);
    },

    detach: (_vmId, lease, opId) => detach(lease, opId),

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
