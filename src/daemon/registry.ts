import type { Registration } from "../rpc/dispatcher.js";
import type { PeerCred } from "../system/peercred.js";
import type { DaemonEnv } from "./env.js";
import { imageMethods } from "./methods/image.js";
import { systemMethods } from "./methods/system.js";
import { daemonStorage } from "./storage/vm-storage.js";
import { lifecycleMethods } from "./vm/wiring.js";

/** The daemon's dispatch table. */
export function daemonMethods(env: DaemonEnv): Registration<PeerCred>[] {
  return [...systemMethods(env, [daemonStorage(env).info]), ...lifecycleMethods(env), ...imageMethods(env)];
}
