import { rm } from "node:fs/promises";
import { state } from "../../paths/paths.js";
import type { VmRecord } from "../../state/vms.js";
import type { Lease, RootDisk, VmmHandle } from "./deps.js";
import { syncKnownHosts, type LifecycleEnv } from "./lifecycle-env.js";
import { errorMessage } from "./steps.js";

/**
 * Teardown is collect-and-continue: every action runs even when an earlier
 * one failed (a VMM that refuses to die must not strand the tap or the disk
 * devices), and all failures come back together in one AggregateError.
 */
export interface TeardownAction {
  readonly name: string;
  run(): Promise<void>;
}

export async function runAll(actions: readonly TeardownAction[], what: string): Promise<void> {
  const errors: Error[] = [];
  for (const a of actions) {
    try {
      await a.run();
    } catch (e) {
      errors.push(new Error(`${a.name}: ${errorMessage(e)}`, { cause: e }));
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, `${what} failed in ${errors.length} step(s): ${errors.map((e) => e.message).join("; ")}`);
}

export function vmmHandleOf(vm: VmRecord): VmmHandle | undefined {
  const h = vm.handles;
  if (h.pid === undefined || h.control_socket === undefined) return undefined;
  return { ...(h.vmm ?? {}), kind: h.vmm_kind ?? vm.vmm, pid: h.pid, controlSocket: h.control_socket, vsockPath: h.vsock_path };
}

export function rootDiskOf(vm: VmRecord): RootDisk | undefined {
  const r = vm.handles.root_disk;
  if (r === undefined || typeof r["path"] !== "string" || typeof r["strategy"] !== "string") return undefined;
  return { ...r, strategy: r["strategy"], path: r["path"] };
}

/** Rebuilds the lease from handles for detach; the network layer only needs ip/mac/tap to find its rules. */
function leaseOf(vm: VmRecord): Lease | undefined {
  const h = vm.handles;
  if (h.ip === undefined || h.mac === undefined || h.tap === undefined) return undefined;
  return { ip: h.ip, mac: h.mac, tap: h.tap, cid: h.cid ?? 0, prefix: 0, gateway: "", nameservers: [] };
}

/** True when the VMM was recorded in an earlier boot of the host: its pid now names something else, or nothing. */
export function startedBeforeReboot(env: LifecycleEnv, vm: VmRecord): boolean {
  return vm.handles.boot_id !== undefined && vm.handles.boot_id !== env.bootId;
}

const NO_VMM = { pid: undefined, control_socket: undefined, vsock_path: undefined, vmm: undefined, boot_id: undefined };

/** Everything that only exists while a VM runs: DNS record, VMM, tap + NAT, active disk devices. */
export function stopActions(env: LifecycleEnv, vm: VmRecord, opts: { force: boolean; opId: string }): TeardownAction[] {
  const { deps } = env;
  const actions: TeardownAction[] = [{ name: "unpublish-dns", run: () => deps.dns.unpublish(vm.name, opts.opId) }];
  const vmm = vmmHandleOf(vm);
  if (vmm !== undefined && startedBeforeReboot(env, vm)) {
    // The host rebooted since: the VMM died with it, and its pid may now be an unrelated process.
    actions.push({ name: "forget-vmm", run: async () => { await env.handles.save(vm.id, NO_VMM); } });
  } else if (vmm !== undefined) {
    actions.push({
      name: "stop-vmm",
      run: async () => {
        await deps.vmm.stop(vmm, { timeoutMs: env.stopTimeoutMs, force: opts.force }, opts.opId);
        await env.handles.save(vm.id, NO_VMM);
      },
    });
  }
  actions.push({ name: "remove-vmm-files", run: () => deps.vmm.release(vm.id, opts.opId) });
  const lease = leaseOf(vm);
  if (lease !== undefined) actions.push({ name: "unpublish-ports", run: () => deps.ports.clear(vm.id, lease, opts.opId) });
  if (lease !== undefined) actions.push({ name: "clear-egress", run: () => deps.egress.clear(vm.id, lease, opts.opId) });
  if (lease !== undefined) actions.push({ name: "detach-network", run: () => deps.network.detach(vm.id, lease, opts.opId) });
  const root = rootDiskOf(vm);
  if (root !== undefined) actions.push({ name: "deactivate-root", run: () => deps.storage.deactivateRoot(root, opts.opId) });
  return actions;
}

/** Everything the VM owns for good: disks, lease, VM dir, known_hosts entry. */
function ownedActions(env: LifecycleEnv, vm: VmRecord, opts: { opId: string }): TeardownAction[] {
  const { deps } = env;
  const actions: TeardownAction[] = [];
  const root = rootDiskOf(vm);
  if (root !== undefined) actions.push({ name: "destroy-root", run: () => deps.storage.destroyRoot(root, opts.opId) });
  const work = vm.handles.work_disk;
  if (work !== undefined) actions.push({ name: "destroy-work-disk", run: () => deps.storage.destroyWorkDisk(work, opts.opId) });
  actions.push(
    { name: "release-lease", run: () => deps.network.release(vm.id, opts.opId) },
    { name: "unpin-host-key", run: () => syncKnownHosts(env, vm.id) },
    { name: "remove-vm-dir", run: () => rm(state.vmDir(env.stateDir, vm.id), { recursive: true, force: true }) },
  );
  return actions;
}

/**
 * Deletes a VM in two phases, each collect-and-continue: first what only a running VM has (stop
 * actions), then what it owns for good. The second waits for the first to succeed: a VMM that could
 * not be stopped (the root helper down) may still be using its disks and its address, and a lease
 * released under a live guest would go to the next VM while the old guest still answers on it (and
 * the old VM's later NAT removal would take the new one's rule). `only`: run just these actions.
 */
export async function deleteVm(env: LifecycleEnv, vm: VmRecord, opts: { opId: string; only?: ReadonlySet<string> }, what: string): Promise<void> {
  const pick = (actions: TeardownAction[]): TeardownAction[] => (opts.only === undefined ? actions : actions.filter((a) => opts.only?.has(a.name) === true));
  await runAll(pick(stopActions(env, vm, { force: true, opId: opts.opId })), what);
  await runAll(pick(ownedActions(env, vm, opts)), what);
}
