import { mkdir, rm, writeFile } from "node:fs/promises";
import { snapshotFiles, state as statePaths } from "../../paths/paths.js";
import type { SnapshotKind, SnapshotRecord, SnapshotRepository } from "../../state/snapshots.js";
import type { VmRecord } from "../../state/vms.js";
import type { ImageInfo, VmmHandle } from "./deps.js";
import type { LifecycleEnv } from "./lifecycle-env.js";
import { runSteps, type Step } from "./steps.js";
import { rootDiskOf, vmmHandleOf } from "./teardown.js";

export interface SnapshotRequest {
  readonly vm: VmRecord;
  readonly id: string;
  readonly name: string;
  readonly kind: SnapshotKind;
  readonly image: ImageInfo;
}

interface SnapCtx {
  readonly env: LifecycleEnv;
  readonly snapshots: SnapshotRepository;
  readonly req: SnapshotRequest;
  readonly opId: string;
  readonly dir: string;
  readonly vmm: VmmHandle;
  readonly rootDisk: string;
  readonly workDisk: string;
  record?: SnapshotRecord;
  bytes?: number;
}

/**
 * Snapshot steps, in order: the guest is frozen, both disks are cloned (O(1) with reflink) while
 * nothing writes them, the VMM saves device and memory state, and a VM that was running runs on.
 * The disks and the state then describe the same instant. qemu's `stop` drains and flushes the
 * disks before it answers, so the host files hold every write the guest had submitted; what the
 * guest still had in its page cache is in the saved memory. The kernel and initrd are copied too,
 * so the snapshot outlives a rebuild of its image.
 */
const recordStep: Step<SnapCtx> = {
  name: "record",
  run(ctx) {
    const { vm, id, name, kind, image } = ctx.req;
    ctx.record = ctx.snapshots.insert({
      id, name, kind, sourceVmId: vm.id, sourceVmName: vm.name, image: vm.image, imageCreatedAt: image.createdAt ?? "", flavor: image.flavor,
      vcpus: vm.vcpus, memoryMib: vm.memoryMib, diskGib: vm.diskGib, vmm: vm.handles.vmm_kind ?? vm.vmm, hostKeyPub: vm.handles.host_key_pub ?? "",
    });
    return Promise.resolve();
  },
  undo(ctx) {
    ctx.snapshots.delete(ctx.req.id);
    return Promise.resolve();
  },
};

const dirStep: Step<SnapCtx> = {
  name: "snapshot-dir",
  async run(ctx) {
    await mkdir(ctx.dir, { recursive: true, mode: 0o700 });
  },
  async undo(ctx) {
    await rm(ctx.dir, { recursive: true, force: true });
  },
};

const freezeStep: Step<SnapCtx> = {
  name: "pause",
  async run(ctx) {
    if (ctx.req.vm.state === "running") await ctx.env.deps.vmm.setPaused(ctx.vmm, true, ctx.opId);
  },
  async undo(ctx) {
    if (ctx.req.vm.state === "running") await ctx.env.deps.vmm.setPaused(ctx.vmm, false, ctx.opId);
  },
};

const disksStep: Step<SnapCtx> = {
  name: "clone-disks",
  async run(ctx) {
    const { storage } = ctx.env.deps;
    const { image } = ctx.req;
    const copies: [string | undefined, string][] = [
      [ctx.rootDisk, snapshotFiles.rootDisk(ctx.dir)],
      [ctx.workDisk, snapshotFiles.workDisk(ctx.dir)],
      [image.kernelPath, snapshotFiles.kernel(ctx.dir)],
      [image.vmlinuxPath, snapshotFiles.vmlinux(ctx.dir)],
      [image.initrdPath, snapshotFiles.initrd(ctx.dir)],
    ];
    await Promise.all([
      ...copies.flatMap(([from, to]) => (from === undefined ? [] : [storage.cloneFile(from, to, { spare: false }, ctx.opId)])),
      // Made by the owner, empty and private: the VMM side writes them by descriptor, never creates files here.
      writeFile(snapshotFiles.vmState(ctx.dir), "", { mode: 0o600, flag: "wx" }),
      writeFile(snapshotFiles.memory(ctx.dir), "", { mode: 0o600, flag: "wx" }),
    ]);
  },
};

const saveStep: Step<SnapCtx> = {
  name: "save-state",
  async run(ctx) {
    const r = await ctx.env.deps.vmm.saveState(ctx.vmm, { state: snapshotFiles.vmState(ctx.dir), memory: snapshotFiles.memory(ctx.dir) }, ctx.opId);
    ctx.bytes = r.bytes;
  },
};

const thawStep: Step<SnapCtx> = {
  name: "resume",
  async run(ctx) {
    if (ctx.req.vm.state === "running") await ctx.env.deps.vmm.setPaused(ctx.vmm, false, ctx.opId);
  },
};

const readyStep: Step<SnapCtx> = {
  name: "ready",
  async run(ctx) {
    ctx.record = ctx.snapshots.markReady(ctx.req.id, await ctx.env.deps.vmm.stateCompatibility(), ctx.bytes ?? 0);
  },
};

export const SNAPSHOT_STEPS: readonly Step<SnapCtx>[] = [recordStep, dirStep, freezeStep, disksStep, saveStep, thawStep, readyStep];

/** Takes a snapshot of a running or paused VM (the caller holds the VM's lock); a failure leaves no trace of it. */
export async function takeSnapshot(env: LifecycleEnv, snapshots: SnapshotRepository, req: SnapshotRequest, opId: string): Promise<SnapshotRecord> {
  const vmm = vmmHandleOf(req.vm);
  if (vmm === undefined) throw new Error(`VM ${req.vm.name} is ${req.vm.state} but has no VMM on record`);
  const root = rootDiskOf(req.vm);
  if (root === undefined || req.vm.handles.work_disk === undefined) throw new Error(`VM ${req.vm.name} has no disks on record`);
  if (root.strategy === "dm-snapshot") throw new Error(`VM ${req.vm.name} has a device-mapper root disk, which banger cannot snapshot yet; use storage.clone_strategy = "reflink" or "copy" for VMs you want to snapshot`);
  const ctx: SnapCtx = { env, snapshots, req, opId, dir: statePaths.snapshotDir(env.stateDir, req.id), vmm, rootDisk: root.path, workDisk: req.vm.handles.work_disk };
  await runSteps(SNAPSHOT_STEPS, ctx);
  if (ctx.record === undefined) throw new Error("snapshot steps finished without a record");
  return ctx.record;
}

/** Removes a snapshot's files, then its record (a record without files would promise a restore that cannot work). */
export async function deleteSnapshot(env: LifecycleEnv, snapshots: SnapshotRepository, snap: SnapshotRecord, opId: string): Promise<void> {
  const dir = statePaths.snapshotDir(env.stateDir, snap.id);
  await env.deps.storage.dropSpares([snapshotFiles.rootDisk(dir), snapshotFiles.workDisk(dir)], opId);
  await rm(dir, { recursive: true, force: true });
  snapshots.delete(snap.id);
}
