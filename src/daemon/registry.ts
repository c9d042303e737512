import type { Registration } from "../rpc/dispatcher.js";
import type { PeerCred } from "../system/peercred.js";
import { hostDnsInfoContributor } from "./dns/info.js";
import type { PublishedNames } from "./dns/published-names.js";
import type { DnsServer } from "./dns/server.js";
import type { DaemonEnv } from "./env.js";
import { imageMethods } from "./methods/image.js";
import { systemMethods, type InfoContributor } from "./methods/system.js";
import { networkInfoContributor } from "./network/info.js";
import { networkService } from "./network/service.js";
import { daemonStorage } from "./storage/vm-storage.js";
import type { EgressDeps, VmmDeps } from "./vm/deps.js";
import { portsService } from "./ports/service.js";
import { lifecycleMethods, type LifecycleShutdown } from "./vm/wiring.js";

/** Long-lived parts main.ts starts before serving and hands to the methods. */
export interface DaemonServices {
  readonly dns: DnsServer;
  /** Where the lifecycle publishes VM names: `dns` and the host (published-names.ts). */
  readonly names: PublishedNames;
  readonly vmm: VmmDeps;
  /** Egress through the root helper; shares its map of policed guests with `dns` (egress/service.ts). */
  readonly egress: EgressDeps;
  readonly vmmInfo: InfoContributor;
}

/** The daemon's dispatch table, with every subsystem wired into the VM lifecycle, and how to wind it down. */
export function daemonMethods(env: DaemonEnv, services: DaemonServices): { methods: Registration<PeerCred>[] } & LifecycleShutdown {
  const storage = daemonStorage(env);
  const lifecycle = lifecycleMethods(env, { network: networkService(env), ports: portsService(env), egress: services.egress, storage: storage.deps, dns: services.names, vmm: services.vmm });
  const contributors = [services.vmmInfo, storage.info, networkInfoContributor(env.config, () => services.dns.address()), hostDnsInfoContributor(env, services.dns), lifecycle.startupInfo];
  return { methods: [...systemMethods(env, contributors), ...lifecycle, ...imageMethods(env)], stopServing: () => { lifecycle.stopServing(); }, shutdown: () => lifecycle.shutdown(), reconciled: lifecycle.reconciled };
}
