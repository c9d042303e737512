import { domainAllowed, type EgressPolicy } from "../../model/egress.js";
import { newOpId } from "../../rpc/opid.js";
import { privLearnEgress, privListEgress, privSetEgress } from "../../rpc/priv/egress.js";
import { getEgress } from "../../state/egress.js";
import type { DaemonEnv } from "../env.js";
import type { EgressDeps, NatGuest } from "../vm/deps.js";
import { addressesIn } from "./learn.js";

/** What banger's DNS does for one guest under a policy other than `all`. */
export interface GuestGate {
  /** Whether a name outside .vm may be resolved for this guest (relaying others would be a tunnel). */
  allows(name: string): boolean;
  /** Allows the reply's addresses to the guest; resolves once the helper has them in its set. */
  learn(reply: Buffer): Promise<void>;
}

/** The DNS server's view of egress: undefined for a guest it may serve without a policy. */
export type EgressGate = (clientIp: string) => GuestGate | undefined;

/**
 * The daemon's side of egress: the VM's record (state/egress.ts) applied through the root helper,
 * and, for the DNS server, which guest address is under which policy. That map is this process's:
 * filled by apply (every boot, and start-up's adoption of running VMs), emptied by clear.
 */
export function egressService(env: DaemonEnv): { deps: EgressDeps; gate: EgressGate } {
  const policies = new Map<string, EgressPolicy>();
  const call = async (guest: NatGuest, params: { remove: boolean; policy: EgressPolicy; isolate: boolean; forget: boolean }, opId: string): Promise<void> => {
    const p = params.policy;
    await env.helper.call(privSetEgress, { guest_ip: guest.ip, tap: guest.tap, remove: params.remove, mode: p.mode, cidrs: p.mode === "allow" ? [...p.cidrs] : [], isolate: params.isolate, forget_learned: params.forget }, opId);
  };
  const deps: EgressDeps = {
    async apply(vmId, guest, opId, opts) {
      const rec = getEgress(env.db, vmId);
      await call(guest, { remove: false, policy: rec.policy, isolate: rec.isolate, forget: opts?.forgetLearned === true }, opId);
      if (rec.policy.mode === "all") policies.delete(guest.ip);
      else policies.set(guest.ip, rec.policy);
    },
    async clear(_vmId, guest, opId) {
      policies.delete(guest.ip);
      await call(guest, { remove: true, policy: { mode: "all" }, isolate: false, forget: true }, opId);
    },
    async registered(opId) {
      return (await env.helper.call(privListEgress, {}, opId)).guests.map((g) => ({ ip: g.guest_ip, tap: g.tap }));
    },
  };
  const gate: EgressGate = (clientIp) => {
    const policy = policies.get(clientIp);
    if (policy === undefined) return undefined;
    const domains = policy.mode === "allow" ? policy.domains : [];
    return {
      allows: (name) => domainAllowed(domains, name),
      async learn(reply) {
        const addrs = addressesIn(reply);
        if (addrs.length === 0) return;
        const opId = newOpId();
        await env.helper.call(privLearnEgress, { guest_ip: clientIp, addrs: addrs.slice(0, 64).map((a) => ({ ip: a.ip, ttl_s: a.ttlS })) }, opId);
        env.logger.debug("egress learned", { op_id: opId, guest_ip: clientIp, addrs: addrs.map((a) => a.ip) });
      },
    };
  };
  return { deps, gate };
}
