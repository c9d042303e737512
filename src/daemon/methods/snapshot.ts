import { state } from "../../paths/paths.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { imageWarm, snapshotDelete, snapshotGet, snapshotList, vmFork, vmRestore, vmSnapshot, type SnapshotView } from "../../rpc/daemon/snapshot.js";
import type { SnapshotRecord } from "../../state/snapshots.js";
import type { PeerCred } from "../../system/peercred.js";
import type { VmMethodsEnv } from "./vm.js";

function toSnapshotView(s: SnapshotRecord, stateDir: string): SnapshotView {
  return {
    id: s.id,
    name: s.name,
    kind: s.kind,
    state: s.state,
    source_vm: s.sourceVmName,
    image: s.image,
    vcpus: s.vcpus,
    memory_mib: s.memoryMib,
    disk_gib: s.diskGib,
    vmm: s.vmm,
    vmm_version: s.vmmVersion,
    state_bytes: s.stateBytes,
    host_key_pub: s.hostKeyPub,
    dir: state.snapshotDir(stateDir, s.id),
    created_at: s.createdAt,
  };
}

/** vm.snapshot / vm.restore / vm.fork, snapshot.*, and image.warm (whose template is a snapshot). */
export function snapshotMethods(env: VmMethodsEnv): Registration<PeerCred>[] {
  const s = env.service;
  const view = (snap: SnapshotRecord): SnapshotView => toSnapshotView(snap, env.stateDir);
  const after = <T>(fn: () => T | Promise<T>): Promise<T> => env.reconciled.then(fn);
  return [
    implement(vmSnapshot, (p, ctx) => after(async () => view(await s.snapshot(p.name, p.snapshot, ctx.opId)))),
    implement(vmRestore, (p, ctx) => after(() => s.restore(p.snapshot, p.name, ctx.opId))),
    implement(vmFork, (p, ctx) => after(() => s.fork(p.name, { name: p.fork_name, count: p.count ?? 1 }, ctx.opId))),
    implement(snapshotList, () => after(() => ({ snapshots: s.listSnapshots().map(view) }))),
    implement(snapshotGet, (p) => after(() => view(s.mustGetSnapshot(p.name)))),
    implement(snapshotDelete, (p, ctx) => after(async () => ({ name: (await s.deleteSnapshot(p.name, ctx.opId)).name, deleted: true as const }))),
    implement(imageWarm, (p, ctx) => after(async () => view(await s.warm(p.name, { vcpus: p.vcpus, memoryMib: p.memory_mib, diskGib: p.disk_gib }, ctx.opId)))),
  ];
}
