import { implement, type Registration } from "../../rpc/dispatcher.js";
import { privPing } from "../../rpc/priv/ping.js";
import type { PeerCred } from "../../system/peercred.js";
import { VERSION } from "../../version.js";
import type { HelperEnv } from "../env.js";

export function pingMethods(env: HelperEnv): Registration<PeerCred>[] {
  return [
    implement(privPing, () => ({
      version: VERSION,
      pid: process.pid,
      owner_uid: env.ownerUid,
      state_dir: env.roots.state.path,
      vmm_dir: env.vmmRunDirs.root.path,
    })),
  ];
}
