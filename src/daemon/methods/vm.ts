import { state } from "../../paths/paths.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { vmCreate, vmDelete, vmGet, vmList, vmLogs, vmPause, vmResize, vmRestart, vmResume, vmStart, vmStats, vmStop } from "../../rpc/daemon/vm.js";
import type { VmRecord } from "../../state/vms.js";
import type { PeerCred } from "../../system/peercred.js";
import type { Runner } from "../../system/runner.js";
import { readGuestUsage } from "../vm/guest-stats.js";
import { consoleLogPath, readLogChunk, vmStats as readVmStats } from "../vm/inspect.js";
import type { VmService } from "../vm/service.js";
import { toVmView } from "../vm/view.js";
import type { Db } from "../../state/database.js";
import { egressByVm, getEgress, type VmEgress } from "../../state/egress.js";
import { listPorts, portsByVm } from "../../state/ports.js";
import { egressPolicyFrom } from "./egress.js";
import { portSpecsFrom } from "./ports.js";

export interface VmMethodsEnv {
  readonly service: VmService;
  /**
   * Settles when the start-up reconcile has: until then the records may still say `running` for a
   * VM whose VMM died with the host or the previous daemon, so every vm.* answer waits for it.
   */
  readonly reconciled: Promise<void>;
  readonly stateDir: string;
  readonly db: Db;
  /** What a create without --egress/--isolate gets (network.egress, network.isolate). */
  readonly defaultEgress: VmEgress;
  /** Told after a VM stopped or was deleted, so what holds connections to its guest lets go. */
  readonly released?: (vmId: string, opId: string) => void;
  readonly runner: Runner;
  /** How `vm stats` reads the guest's own view (over ssh unless a test says otherwise). */
  readonly guestUsage?: typeof readGuestUsage;
}

/** The create's egress: each of policy and isolation given, or the configured default. */
export function createEgress(p: { egress?: string | undefined; isolate?: boolean | undefined }, defaults: VmEgress): VmEgress | undefined {
  if (p.egress === undefined && p.isolate === undefined) return undefined;
  return { policy: p.egress === undefined ? defaults.policy : egressPolicyFrom("egress", p.egress), isolate: p.isolate ?? defaults.isolate };
}

export function vmMethods(env: VmMethodsEnv): Registration<PeerCred>[] {
  const paths = { stateDir: env.stateDir, knownHostsPath: state.knownHosts(env.stateDir), keyPath: state.sshKey(env.stateDir) };
  const view = (vm: VmRecord): ReturnType<typeof toVmView> => toVmView(vm, paths, { egress: getEgress(env.db, vm.id), ports: listPorts(env.db, vm.id) });
  const s = env.service;
  const after = <T>(fn: () => T | Promise<T>): Promise<T> => env.reconciled.then(fn);
  const guestUsageOf = async (vm: VmRecord): ReturnType<typeof readGuestUsage> => {
    if (vm.state !== "running" || vm.handles.ip === undefined) return { error: `the VM is ${vm.state}` };
    return (env.guestUsage ?? readGuestUsage)(env.runner, { keyPath: paths.keyPath, knownHostsPath: paths.knownHostsPath, host: vm.handles.ip });
  };
  return [
    implement(vmCreate, (p, ctx) => after(() => s.create({ name: p.name, image: p.image, vcpus: p.vcpus, memoryMib: p.memory_mib, diskGib: p.disk_gib, cold: p.cold, rootGib: p.root_gib, ports: p.ports === undefined ? undefined : portSpecsFrom("ports", p.ports), egress: createEgress(p, env.defaultEgress) }, ctx.opId))),
    implement(vmStart, (p, ctx) => after(() => s.start(p.name, ctx.opId))),
    implement(vmRestart, (p, ctx) => after(() => s.restart(p.name, p.force ?? false, ctx.opId))),
    implement(vmStop, (p, ctx) => after(async () => {
      const vm = await s.stop(p.name, p.force ?? false, ctx.opId);
      env.released?.(vm.id, ctx.opId);
      return { ...view(vm), ...(vm.changed === false ? { changed: false as const } : {}) };
    })),
    implement(vmPause, (p, ctx) => after(async () => {
      const r = await s.pause(p.name, ctx.opId);
      return { vm: view(r.vm), changed: r.changed };
    })),
    implement(vmResume, (p, ctx) => after(async () => {
      const r = await s.resume(p.name, ctx.opId);
      return { vm: view(r.vm), changed: r.changed };
    })),
    implement(vmDelete, (p, ctx) => after(async () => {
      const vm = await s.delete(p.name, p.force ?? false, ctx.opId);
      env.released?.(vm.id, ctx.opId);
      return { id: vm.id, name: vm.name, deleted: true as const };
    })),
    implement(vmResize, (p, ctx) => after(async () => view(await s.resize(p.name, { rootGib: p.root_gib, workGib: p.work_gib }, ctx.opId)))),
    implement(vmList, () => after(() => {
      const egressOf = egressByVm(env.db);
      const portsOf = portsByVm(env.db);
      return { vms: s.list().map((vm) => toVmView(vm, paths, { egress: egressOf(vm.id), ports: portsOf(vm.id) })) };
    })),
    implement(vmGet, (p) => after(() => view(s.mustGet(p.name)))),
    implement(vmLogs, (p) => after(async () => {
      const vm = s.mustGet(p.name);
      const chunk = await readLogChunk(consoleLogPath(env.stateDir, vm), { offset: p.offset, maxBytes: p.max_bytes, tailBytes: p.tail_bytes, tailLines: p.tail_lines });
      return { path: chunk.path, data: chunk.data.toString("base64"), offset: chunk.offset, next_offset: chunk.nextOffset, size: chunk.size, state: vm.state };
    })),
    implement(vmStats, (p) => after(async () => {
      const vm = s.mustGet(p.name);
      const [st, guest] = await Promise.all([readVmStats(vm), guestUsageOf(vm)]);
      return {
        name: vm.name,
        state: vm.state,
        pid: st.pid,
        cpu_percent: st.cpuPercent,
        cpu_percent_recent: st.cpuPercentRecent,
        rss_bytes: st.rssBytes,
        uptime_s: st.uptimeS,
        vcpus: vm.vcpus,
        memory_mib: vm.memoryMib,
        disk: { root_allocated_bytes: st.rootAllocatedBytes, work_allocated_bytes: st.workAllocatedBytes, work_size_bytes: st.workSizeBytes },
        guest: "usage" in guest ? {
          memory: { total_bytes: guest.usage.memory.totalBytes, available_bytes: guest.usage.memory.availableBytes, used_bytes: guest.usage.memory.usedBytes },
          disks: guest.usage.disks.map((d) => ({ mount: d.mount, size_bytes: d.sizeBytes, used_bytes: d.usedBytes, available_bytes: d.availableBytes })),
        } : null,
        guest_error: "error" in guest ? guest.error : null,
      };
    })),
  ];
}
