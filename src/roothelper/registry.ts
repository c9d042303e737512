import type { Registration } from "../rpc/dispatcher.js";
import type { PeerCred } from "../system/peercred.js";
import type { HelperEnv } from "./env.js";
import { agentMethods } from "./methods/agent.js";
import { diskMethods } from "./methods/disks.js";
import { egressMethods } from "./methods/egress.js";
import { networkMethods } from "./methods/network.js";
import { pingMethods } from "./methods/ping.js";
import { snapshotMethods } from "./methods/snapshot.js";
import { portsMethods } from "./methods/ports.js";
import { vmmMethods } from "./methods/vmm.js";

/** The root helper's dispatch table: every privileged method, each validating its own params. */
export function helperMethods(env: HelperEnv): Registration<PeerCred>[] {
  return [...pingMethods(env), ...networkMethods(env), ...portsMethods(env), ...egressMethods(env), ...diskMethods(env), ...vmmMethods(env), ...snapshotMethods(env), ...agentMethods(env)];
}
