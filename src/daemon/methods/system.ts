import { implement, type Registration } from "../../rpc/dispatcher.js";
import { daemonPing, systemInfo, systemTeardownNetwork, type SystemInfo } from "../../rpc/daemon/system.js";
import { RpcError } from "../../rpc/errors.js";
import { privTeardownNetwork } from "../../rpc/priv/network.js";
import { privPing } from "../../rpc/priv/ping.js";
import type { PeerCred } from "../../system/peercred.js";
import { VmRepository } from "../../state/vms.js";
import { VERSION } from "../../version.js";
import type { DaemonEnv } from "../env.js";

/** Sections other subsystems contribute to `system.info` (vmm choice, clone strategy, network, dns). */
export type InfoContributor = (opId: string) => Promise<Partial<SystemInfo>> | Partial<SystemInfo>;

export function systemMethods(env: DaemonEnv, contributors: readonly InfoContributor[] = []): Registration<PeerCred>[] {
  return [
    implement(daemonPing, () => ({ version: VERSION, pid: process.pid })),
    implement(systemInfo, async (_params, ctx) => {
      let helper: SystemInfo["helper"];
      try {
        const pong = await env.helper.call(privPing, {}, ctx.opId, 5_000);
        helper = { reachable: true, socket: env.helper.socketPath, version: pong.version, owner_uid: pong.owner_uid };
      } catch (e) {
        helper = { reachable: false, socket: env.helper.socketPath, error: e instanceof Error ? e.message : String(e) };
      }
      let info: SystemInfo = {
        daemon: { version: VERSION, pid: process.pid, uid: process.getuid?.() ?? -1, socket: env.layout.daemonSocket },
        helper,
        paths: { state_dir: env.layout.stateDir, runtime_dir: env.layout.runtimeDir, config: env.layout.configFile },
        owner_uid: env.ownerUid,
      };
      for (const contribute of contributors) info = { ...info, ...(await contribute(ctx.opId)) };
      return info;
    }),
    implement(systemTeardownNetwork, async (_params, ctx) => {
      const busy = new VmRepository(env.db).list().filter((vm) => vm.state !== "stopped" && vm.state !== "error");
      if (busy.length > 0) throw new RpcError("conflict", `VMs still ${[...new Set(busy.map((vm) => vm.state))].join("/")}: ${busy.map((vm) => vm.name).join(", ")}; stop them first (banger vm stop NAME), or uninstall with --force`);
      return env.helper.call(privTeardownNetwork, {}, ctx.opId, 60_000);
    }),
  ];
}
