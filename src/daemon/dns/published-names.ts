import { bridgeIp } from "../../model/ipv4.js";
import { privSyncHosts } from "../../rpc/priv/network.js";
import type { DaemonEnv } from "../env.js";
import type { DnsDeps } from "../vm/deps.js";
import type { DnsServer } from "./server.js";

export interface PublishedNames extends DnsDeps {
  /** Hands the helper the full list of running VMs' names, for the host's hosts file; after start-up's reconcile. */
  syncHost(opId: string): Promise<void>;
}

/**
 * Where a VM's name goes when the lifecycle publishes it: banger's DNS
 * server (for guests, and the host through systemd-resolved) and the root
 * helper's hosts file block (priv.sync_hosts, a no-op unless
 * network.host_dns picked the hosts file). The helper always gets the whole
 * list, so an entry of a VM that stopped while the daemon was down goes at
 * the next sync. Entries stay when the daemon stops: its VMs keep running.
 * A failed host sync costs only host-side lookups, so it is logged (and
 * `doctor` shows the lookup failing), never fatal to the VM's start.
 */
export function publishedNames(server: DnsServer, env: DaemonEnv): PublishedNames {
  const gateway = bridgeIp(env.config.network.cidr);
  let chain: Promise<void> = Promise.resolve();
  const syncHost = (opId: string): Promise<void> => {
    const run = chain.then(async () => {
      try {
        await env.helper.call(privSyncHosts, { entries: server.entries() }, opId);
      } catch (e) {
        env.logger.warn("NAME.vm not synced to the host's hosts file", { op_id: opId, error: e instanceof Error ? e.message : String(e) });
      }
    });
    chain = run;
    return run;
  };
  return {
    async publish(name, ip, opId) {
      await server.publish(name, ip);
      // The bridge, and with it the address guests query, exists by the time a VM's name is published.
      await server.listenForGuests(gateway).catch((e: unknown) => {
        env.logger.warn("dns: cannot listen on the bridge for guests", { op_id: opId, error: e instanceof Error ? e.message : String(e) });
      });
      await syncHost(opId);
    },
    async unpublish(name, opId) {
      await server.unpublish(name);
      await syncHost(opId);
    },
    syncHost,
  };
}
