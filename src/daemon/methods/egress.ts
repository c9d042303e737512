import { EGRESS_USAGE, formatEgress, parseEgress, type EgressPolicy } from "../../model/egress.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import { vmEgressSet, vmEgressShow } from "../../rpc/daemon/egress.js";
import type { Db } from "../../state/database.js";
import { getEgress, setEgress, type VmEgress } from "../../state/egress.js";
import type { VmRecord } from "../../state/vms.js";
import type { PeerCred } from "../../system/peercred.js";
import type { EgressDeps } from "../vm/deps.js";
import type { VmService } from "../vm/service.js";

/** The daemon's own check of a policy a client sent: a usage error before anything is recorded. */
export function egressPolicyFrom(field: string, text: string): EgressPolicy {
  const p = parseEgress(text);
  if ("error" in p) throw new RpcError("bad_params", `${field}: ${p.error}${p.error.includes(EGRESS_USAGE) ? "" : `; ${EGRESS_USAGE}`}`);
  return p;
}

export interface EgressMethodsEnv {
  readonly service: VmService;
  readonly egress: EgressDeps;
  readonly db: Db;
  readonly reconciled: Promise<void>;
}

/** vm.egress_set|show: the record in the state store; a running VM's rules follow it at once. */
export function egressMethods(env: EgressMethodsEnv): Registration<PeerCred>[] {
  const after = <T>(fn: () => Promise<T>): Promise<T> => env.reconciled.then(fn);
  const guestOf = (vm: VmRecord): { ip: string; tap: string } | undefined =>
    (vm.state === "running" || vm.state === "paused") && vm.handles.ip !== undefined && vm.handles.tap !== undefined ? { ip: vm.handles.ip, tap: vm.handles.tap } : undefined;
  const result = (vm: VmRecord, e: VmEgress): { name: string; running: boolean; policy: string; isolate: boolean } => ({ name: vm.name, running: guestOf(vm) !== undefined, policy: formatEgress(e.policy), isolate: e.isolate });
  return [
    implement(vmEgressSet, (p, ctx) => after(() => env.service.whileSettled(p.name, async (vm) => {
      if (p.policy === undefined && p.isolate === undefined) throw new RpcError("bad_params", "give a policy (all, none or allow=LIST) and/or isolate");
      const before = getEgress(env.db, vm.id);
      const next: VmEgress = { policy: p.policy === undefined ? before.policy : egressPolicyFrom("policy", p.policy), isolate: p.isolate ?? before.isolate };
      setEgress(env.db, vm.id, next);
      const guest = guestOf(vm);
      if (guest !== undefined) {
        try {
          // Addresses learned under the old policy go: what the new one allows is learned again at the guest's next lookup.
          await env.egress.apply(vm.id, guest, ctx.opId, { forgetLearned: true });
        } catch (e) {
          // All or nothing: the record says what the kernel enforces.
          setEgress(env.db, vm.id, before);
          throw e;
        }
      }
      return result(vm, next);
    }))),
    implement(vmEgressShow, (p) => after(() => {
      const vm = env.service.mustGet(p.name);
      return Promise.resolve(result(vm, getEgress(env.db, vm.id)));
    })),
  ];
}
