import { privNetworkStatus } from "../../rpc/priv/network.js";
import type { DaemonEnv } from "../env.js";
import type { InfoContributor } from "../methods/system.js";
import type { DnsServer } from "./server.js";

/** `system.info`'s `host_dns` section: the helper's host DNS mode, the guests' listen address, and a running VM for doctor to look up. */
export function hostDnsInfoContributor(env: DaemonEnv, server: DnsServer): InfoContributor {
  return async (opId) => {
    const probe = server.entries()[0];
    const guest = server.guestListenAddress();
    const extra = { ...(guest === undefined ? {} : { guest_address: guest }), ...(probe === undefined ? {} : { probe }) };
    try {
      const st = await env.helper.call(privNetworkStatus, {}, opId, 5_000);
      return { host_dns: { ...st.host_dns, ...extra } };
    } catch (e) {
      return { host_dns: { mode: "unknown", reason: `the root helper could not be asked: ${e instanceof Error ? e.message : String(e)}`, ...extra } };
    }
  };
}
