import type { DaemonCaller } from "./client.js";
import { egressText, type EgressPolicy, type EgressState, type VmEgressApi } from "./egress.js";

function egressFrom(text: string): EgressPolicy {
  if (text === "all" || text === "none") return text;
  return { allow: text.startsWith("allow=") ? text.slice("allow=".length).split(",").filter((e) => e !== "") : [text] };
}

export function vmEgress(client: DaemonCaller, name: string): VmEgressApi {
  const state = (r: { policy: string; isolate: boolean }): EgressState => ({ policy: egressFrom(r.policy), isolate: r.isolate });
  return {
    get: async () => state(await client.call("vm.egress_show", { name })),
    set: async (change) => state(await client.call("vm.egress_set", {
      name,
      ...(change.policy !== undefined ? { policy: egressText(change.policy) } : {}),
      ...(change.isolate !== undefined ? { isolate: change.isolate } : {}),
    })),
  };
}
