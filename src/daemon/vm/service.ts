import { randomBytes } from "node:crypto";
import { access, stat } from "node:fs/promises";
import { snapshotFiles, state as statePaths } from "../../paths/paths.js";
import { RpcError } from "../../rpc/errors.js";
import type { PortSpec } from "../../model/port-spec.js";
import { inTransaction, type Db } from "../../state/database.js";
import { getEgress, setEgress, UNRESTRICTED, type VmEgress } from "../../state/egress.js";
import { addPorts } from "../../state/ports.js";
import { DuplicateOperationError } from "../../state/operations.js";
import { DuplicateVmNameError, type VmRecord, type VmState } from "../../state/vms.js";
import { DuplicateSnapshotNameError, type SnapshotKind, type SnapshotRecord, type SnapshotRepository } from "../../state/snapshots.js";
import { checkSnapshotName, defaultSnapshotName, forkNames, templateName } from "./snapshot-names.js";
import { deleteSnapshot, takeSnapshot } from "./take-snapshot.js";
import type { OperationTracker, TrackedOperation } from "../operations/tracker.js";
import { newOpId } from "../../rpc/opid.js";
import { consoleTail, CREATE_STEPS, START_STEPS, type BootCtx, type BootEntry, type RestoreSource } from "./boot-steps.js";
import { RESTORE_STEPS } from "./restore-steps.js";
import type { ImageInfo } from "./deps.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { syncKnownHosts, type LifecycleEnv } from "./lifecycle-env.js";
import { checkDiskGib, checkVmSize, GIB } from "./limits.js";
import { checkVmName, generateVmName } from "./names.js";
import { sweepOrphans, type OrphanSweep } from "./orphans.js";
import { errorMessage, runSteps, StepFailedError, stepNames, type Step } from "./steps.js";
import { deleteVm, rootDiskOf, runAll, startedBeforeReboot, stopActions, vmmHandleOf } from "./teardown.js";

export interface CreateRequest {
  readonly name?: string | undefined;
  readonly image?: string | undefined;
  readonly vcpus?: number | undefined;
  readonly memoryMib?: number | undefined;
  readonly diskGib?: number | undefined;
  /** Boot the image even when it has a warm template. */
  readonly cold?: boolean | undefined;
  readonly ports?: readonly PortSpec[] | undefined;
  /** Recorded with the VM; undefined: the configured default (network.egress, network.isolate). */
  readonly egress?: VmEgress | undefined;
  /** Grow the root disk to this many GiB (`--root-size`). */
  readonly rootGib?: number | undefined;
}

export interface VmServiceOptions {
  readonly env: LifecycleEnv;
  readonly db: Db;
  readonly tracker: OperationTracker;
  readonly defaults: { image: string; vcpus: number; memoryMib: number; diskGib: number; egress?: VmEgress };
  readonly hostCpus?: number;
  readonly createSteps?: readonly BootEntry[];
  readonly startSteps?: readonly BootEntry[];
  readonly restoreSteps?: readonly BootEntry[];
  readonly snapshots: SnapshotRepository;
}

/** What start-up found: VMs by how they were settled, then what no VM claims (see orphans.ts). */
export interface ReconcileResult extends OrphanSweep {
  readonly adopted: string[];
  readonly stopped: string[];
  readonly interrupted: string[];
  readonly failed: string[];
}

export interface OperationRef {
  readonly operation_id: string;
  readonly vm: { id: string; name: string };
}

/**
 * VM lifecycle orchestration. Long actions (create, start, restart) return an
 * operation id at once and run in the background; their progress lands in the
 * operations table. State transitions are checked and written synchronously
 * (better-sqlite3 is synchronous, so check-then-set cannot interleave), and a
 * per-VM mutex keeps two long actions on one VM from overlapping.
 */
export class VmService {
  private readonly env: LifecycleEnv;
  private readonly db: Db;
  private readonly tracker: OperationTracker;
  private readonly defaults: VmServiceOptions["defaults"];
  private readonly hostCpus: number | undefined;
  private readonly createSteps: readonly BootEntry[];
  private readonly startSteps: readonly BootEntry[];
  private readonly restoreSteps: readonly BootEntry[];
  private readonly snapshots: SnapshotRepository;
  private readonly locks = new KeyedMutex();
  private readonly inflight = new Set<Promise<void>>();
  private readonly aborters = new Map<string, AbortController>();
  /** Restores in progress per snapshot id: `snapshot rm` waits for them. */
  private readonly snapshotReaders = new Map<string, number>();

  constructor(opts: VmServiceOptions) {
    this.env = opts.env;
    this.db = opts.db;
    this.tracker = opts.tracker;
    this.defaults = opts.defaults;
    this.hostCpus = opts.hostCpus;
    this.createSteps = opts.createSteps ?? CREATE_STEPS;
    this.startSteps = opts.startSteps ?? START_STEPS;
    this.restoreSteps = opts.restoreSteps ?? RESTORE_STEPS;
    this.snapshots = opts.snapshots;
  }

  /** Resolves when no background operation is running (tests, daemon shutdown). */
  private readonly retries = new Set<NodeJS.Timeout>();

  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Daemon shutdown: abort waits (ssh readiness) so in-flight operations unwind promptly. */
  abortAll(): void {
    for (const ac of this.aborters.values()) ac.abort(new Error("the daemon is shutting down"));
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
  }

  /**
   * An operation that needed the root helper while it was down (crashed or restarting) failed at
   * once; finish what it leaves to do once the helper answers again (retried every 2 s), so the VM
   * still converges: a failed create or delete to gone, a failed start or stop to stopped, without
   * anyone running `vm rm`. A user who acts on the VM first takes over: only a VM still in `error`
   * is touched.
   */
  private convergeLater(vmId: string, to: "gone" | "stopped", what: string, attempt = 1): void {
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      this.background(vmId, () => this.locks.run(vmId, async () => {
        const recorded = this.env.vms.getById(vmId);
        if (recorded === undefined || recorded.state !== "error") return;
        const opId = newOpId();
        try {
          // A VMM whose launch was cut off by the helper's death runs without a pid on record.
          const vm = (await this.liveVmm(recorded, opId)) ?? recorded;
          if (to === "gone") {
            await deleteVm(this.env, vm, { opId }, `finishing the failed ${what} of ${vm.name}`);
            this.env.vms.delete(vm.id);
            await this.resyncKnownHosts();
          } else {
            await runAll(stopActions(this.env, vm, { force: true, opId }), `finishing the failed ${what} of ${vm.name}`);
            this.env.vms.setState(vm.id, "stopped", { startedAt: null, lastError: `${vm.lastError ?? `${what} failed`} (stopped once bangerd-root answered again)` });
          }
          this.env.logger.info("finished a failed operation once the root helper was back", { op_id: opId, vm: vm.name, operation: what, attempt });
        } catch (e) {
          if (helperWasDown(e) && attempt < UNWIND_RETRIES) this.convergeLater(vmId, to, what, attempt + 1);
          else this.markError(recorded.id, `${recorded.lastError ?? ""}; finishing the failed ${what} failed again: ${errorMessage(e)}; run "banger vm rm --force ${recorded.name}"`);
        }
      }));
    }, UNWIND_RETRY_MS);
    timer.unref();
    this.retries.add(timer);
  }

  /** Runs `fn` while no lifecycle operation of the VM is under way (vm port add/rm change what a start or stop applies). */
  whileSettled<T>(name: string, fn: (vm: VmRecord) => Promise<T>): Promise<T> {
    const id = this.mustGet(name).id;
    return this.locks.run(id, () => fn(this.mustGetById(id, name)));
  }

  private mustGetById(id: string, name: string): VmRecord {
    const vm = this.env.vms.getById(id);
    if (vm === undefined) throw new RpcError("not_found", `VM ${JSON.stringify(name)} was deleted meanwhile`);
    return vm;
  }

  mustGet(name: string): VmRecord {
    const vm = this.env.vms.getByName(name);
    if (vm === undefined) throw new RpcError("not_found", `no VM named ${JSON.stringify(name)}; see banger vm ls`);
    return vm;
  }

  list(): VmRecord[] {
    return this.env.vms.list();
  }

  private async image(name: string): Promise<ImageInfo> {
    const image = await this.env.deps.images.get(name);
    if (image === undefined) throw new RpcError("not_found", `unknown image ${JSON.stringify(name)}: build it with "banger image build --name ${name}" or pick one from "banger image ls"`);
    const needed: [string, string | undefined][] = [["kernel", this.env.deps.vmm.kind === "firecracker" ? image.vmlinuxPath ?? image.kernelPath : image.kernelPath], ["rootfs", image.rootfsPath], ["initrd", image.initrdPath]];
    for (const [what, path] of needed) {
      if (path === undefined) continue;
      try {
        await access(path);
      } catch {
        throw new RpcError("not_found", `image ${JSON.stringify(name)} is missing its ${what} (${path}); rebuild it with "banger image build --name ${name} --force"`);
      }
    }
    return image;
  }

  async create(req: CreateRequest, opId: string): Promise<OperationRef> {
    const problems: string[] = [];
    if (req.name !== undefined) {
      const bad = checkVmName(req.name);
      if (bad !== undefined) problems.push(bad);
    }
    const size = { vcpus: req.vcpus ?? this.defaults.vcpus, memoryMib: req.memoryMib ?? this.defaults.memoryMib, diskGib: req.diskGib ?? this.defaults.diskGib };
    problems.push(...checkVmSize(size, this.hostCpus));
    if (req.rootGib !== undefined) problems.push(...[checkDiskGib("--root-size", req.rootGib) ?? []].flat());
    if (problems.length > 0) throw new RpcError("bad_params", problems.join("; "));
    const imageName = req.image ?? this.defaults.image;
    const image = await this.image(imageName);
    if (req.rootGib !== undefined) await this.checkRootNotSmaller(image, req.rootGib);
    // A warm template's root disk has the image's size: a grown root boots cold.
    const warm = req.cold === true || req.rootGib !== undefined ? { note: undefined } : await this.warmTemplate(image, size);
    if (warm.template !== undefined) {
      return (await this.restoreInto(warm.template, { name: req.name, kind: "vm.create", ports: req.ports, egress: req.egress }, opId)).ref;
    }
    if (warm.note !== undefined) this.env.logger.info("cold boot", { op_id: opId, image: image.name, why: warm.note });
    return this.launchNew({ name: req.name, image, size, steps: this.createSteps, kind: "vm.create", note: warm.note, ports: req.ports, egress: req.egress, rootGib: req.rootGib }, opId).ref;
  }

  /** Refused before anything is made: a root disk smaller than its image cannot be. */
  private async checkRootNotSmaller(image: ImageInfo, rootGib: number): Promise<void> {
    const bytes = (await stat(image.rootfsPath)).size;
    if (rootGib * GIB < bytes) throw new RpcError("bad_params", `--root-size ${rootGib} is smaller than image ${image.name}'s root filesystem (${(bytes / GIB).toFixed(1)} GiB); give at least ${Math.ceil(bytes / GIB)}`);
  }

  /**
   * `vm resize`: grows a stopped VM's root disk and/or work disk (/root) and their filesystems, to
   * take effect at its next start. Never shrinks (that can lose what the guest wrote).
   */
  async resize(name: string, want: { rootGib?: number | undefined; workGib?: number | undefined }, opId: string): Promise<VmRecord> {
    const problems = [want.rootGib !== undefined ? checkDiskGib("--root", want.rootGib) : undefined, want.workGib !== undefined ? checkDiskGib("--work", want.workGib) : undefined].filter((p) => p !== undefined);
    if (want.rootGib === undefined && want.workGib === undefined) problems.push("give --root GIB, --work GIB or both");
    if (problems.length > 0) throw new RpcError("bad_params", problems.join("; "));
    const vm = this.mustGet(name);
    return this.locks.run(vm.id, async () => {
      const cur = this.mustGetById(vm.id, name);
      if (cur.state !== "stopped") throw new RpcError("conflict", `VM ${name} is ${cur.state}; resize needs it stopped (banger vm stop ${name}), then start it again`);
      const root = rootDiskOf(cur);
      const work = cur.handles.work_disk;
      if (want.workGib !== undefined && want.workGib < cur.diskGib) throw new RpcError("bad_params", `--work ${want.workGib} is smaller than ${name}'s work disk (${cur.diskGib} GiB); disks only grow`);
      if (want.rootGib !== undefined && root === undefined) throw new RpcError("conflict", `VM ${name} has no root disk on record; delete it with "banger vm rm --force ${name}"`);
      if (want.workGib !== undefined && work === undefined) throw new RpcError("conflict", `VM ${name} has no work disk on record; delete it with "banger vm rm --force ${name}"`);
      try {
        if (want.rootGib !== undefined && root !== undefined) await this.env.deps.storage.growRoot(root, want.rootGib * GIB, opId);
        if (want.workGib !== undefined && work !== undefined && want.workGib > cur.diskGib) await this.env.deps.storage.growWorkDisk(work, want.workGib * GIB, opId);
      } catch (e) {
        throw new RpcError("operation_failed", `could not resize ${name}: ${errorMessage(e)}`);
      }
      this.env.logger.info("VM disks grown", { op_id: opId, vm: name, root_gib: want.rootGib ?? null, work_gib: want.workGib ?? null });
      return want.workGib !== undefined && want.workGib > cur.diskGib ? this.env.vms.setDiskGib(cur.id, want.workGib) : this.mustGetById(cur.id, name);
    });
  }

  /**
   * The image's warm template when one matches this create (same size, same image build, same VMM
   * build and machine), else why not, for the cold boot's note. No template at all needs no note.
   */
  private async warmTemplate(image: ImageInfo, size: { vcpus: number; memoryMib: number; diskGib: number }): Promise<{ template?: SnapshotRecord; note: string | undefined }> {
    const t = this.snapshots.getByName(templateName(image.name));
    if (t === undefined || t.state !== "ready") return { note: undefined };
    const stale = t.imageCreatedAt !== (image.createdAt ?? "") ? `image ${image.name} was rebuilt after its warm template was made`
      : t.vmm !== this.env.deps.vmm.kind ? `the warm template of ${image.name} was made with ${t.vmm}, VMs now use ${this.env.deps.vmm.kind}`
      : t.vmmVersion !== (await this.env.deps.vmm.stateCompatibility()) ? `the warm template of ${image.name} was made by another VMM build or machine type`
      : t.vcpus !== size.vcpus || t.memoryMib !== size.memoryMib || t.diskGib !== size.diskGib ? `the warm template of ${image.name} has ${t.vcpus} vCPUs, ${t.memoryMib} MiB, ${t.diskGib} GiB; this VM asks for ${size.vcpus}, ${size.memoryMib}, ${size.diskGib}`
      : undefined;
    if (stale !== undefined) return { note: `${stale}: booted cold; re-warm with "banger image warm ${image.name}${size.vcpus !== this.defaults.vcpus || size.memoryMib !== this.defaults.memoryMib || size.diskGib !== this.defaults.diskGib ? ` --vcpus ${size.vcpus} --memory ${size.memoryMib} --disk ${size.diskGib}` : ""}"` };
    return { template: t, note: undefined };
  }

  /** Inserts the VM's record and runs `steps` in the background; `done` settles when they have (true: it runs). */
  private launchNew(req: { name: string | undefined; image: ImageInfo; size: { vcpus: number; memoryMib: number; diskGib: number }; steps: readonly BootEntry[]; kind: string; source?: RestoreSource; note?: string | undefined; ports?: readonly PortSpec[] | undefined; egress?: VmEgress | undefined; rootGib?: number | undefined }, opId: string): { ref: OperationRef; done: Promise<unknown> } {
    const id = randomBytes(16).toString("hex");
    let vm: VmRecord;
    try {
      vm = inTransaction(this.db, () => {
        const rec = this.env.vms.insert({ id, name: req.name ?? generateVmName(this.env.vms.names()), image: req.image.name, ...req.size, vmm: this.env.deps.vmm.kind });
        // Reserved with the record, so a second VM asking for the same host port is refused before anything is made.
        addPorts(this.db, rec.id, req.ports ?? [], (other) => this.env.vms.getById(other)?.name ?? other);
        setEgress(this.db, rec.id, req.egress ?? this.defaults.egress ?? UNRESTRICTED);
        return rec;
      });
    } catch (e) {
      if (e instanceof DuplicateVmNameError) throw new RpcError("conflict", e.message);
      throw e;
    }
    const op = this.beginOp(opId, req.kind, vm, req.steps, () => { this.env.vms.delete(vm.id); });
    const ctx = { ...this.bootCtx(vm, req.image, opId), source: req.source, rootGib: req.rootGib };
    // A cancel unwinds like a failed step: the lock wait, the next step boundary or the ssh wait ends.
    op.onCancel((reason) => { this.aborters.get(vm.id)?.abort(reason); });
    // Resolves with true once the VM runs, or with the error that unwound it.
    let settle: (outcome: unknown) => void = () => undefined;
    const done = new Promise<unknown>((resolve) => { settle = resolve; });
    this.background(vm.id, async () => {
      try {
        await this.locks.run(vm.id, () => runSteps(req.steps, ctx, op.onProgress, ctx.signal));
      } catch (e) {
        await this.afterFailedCreate(vm, e, op, opId);
        settle(e);
        return;
      }
      this.finishUp(vm.id, op, { boot: req.source === undefined ? "cold" : "snapshot", ...(req.note === undefined ? {} : { note: req.note }) });
      settle(true);
    });
    return { ref: { operation_id: opId, vm: { id: vm.id, name: vm.name } }, done };
  }

  /**
   * `vm snapshot`: the guest's memory and devices plus both disks, all at one instant (see
   * take-snapshot.ts). The VM keeps running (or stays paused). Under the VM's lock, so no start,
   * stop or delete overlaps it.
   */
  async snapshot(name: string, snapName: string | undefined, opId: string, kind: SnapshotKind = "user"): Promise<SnapshotRecord> {
    if (snapName !== undefined && kind === "user") {
      const bad = checkSnapshotName(snapName) ?? (snapName.startsWith("template.") ? `snapshot names starting with "template." are the warm templates' (banger image warm)` : undefined);
      if (bad !== undefined) throw new RpcError("bad_params", bad);
    }
    const vm = this.mustGet(name);
    return this.locks.run(vm.id, async () => {
      const cur = this.env.vms.getById(vm.id);
      if (cur === undefined) throw new RpcError("not_found", `VM ${name} was deleted`);
      if (cur.state !== "running" && cur.state !== "paused") throw new RpcError("conflict", `cannot snapshot VM ${name}: it is ${cur.state}; a snapshot needs a running or paused VM${cur.state === "stopped" ? ` (start it with "banger vm start ${name}")` : ""}`);
      const image = await this.env.deps.images.get(cur.image);
      if (image === undefined) throw new RpcError("not_found", `VM ${name}'s image ${cur.image} no longer exists; a snapshot keeps a copy of its kernel, so rebuild the image first`);
      const finalName = snapName ?? defaultSnapshotName(cur.name, this.snapshots.names());
      try {
        const snap = await takeSnapshot(this.env, this.snapshots, { vm: cur, id: randomBytes(16).toString("hex"), name: finalName, kind, image }, opId);
        this.env.logger.info("snapshot taken", { op_id: opId, vm: name, snapshot: snap.name, bytes: snap.stateBytes });
        return snap;
      } catch (e) {
        if (e instanceof StepFailedError && e.stepError instanceof DuplicateSnapshotNameError) throw new RpcError("conflict", e.stepError.message);
        if (helperWasDown(e)) throw new RpcError("unavailable", `${errorMessage(e)}; bangerd-root is not answering: try again once it is back`);
        throw new RpcError("operation_failed", `could not snapshot ${name}: ${errorMessage(e)}`);
      }
    });
  }

  /** `vm restore`: a new VM in the snapshot's state, with its own lease, MAC, host key and name. */
  async restore(snapName: string, newName: string | undefined, opId: string): Promise<OperationRef> {
    const snap = this.mustGetSnapshot(snapName);
    if (newName !== undefined) {
      const bad = checkVmName(newName);
      if (bad !== undefined) throw new RpcError("bad_params", bad);
    }
    return (await this.restoreInto(snap, { name: newName, kind: "vm.restore" }, opId)).ref;
  }

  /**
   * `vm fork`: snapshot a running VM and start `count` copies that continue from that instant. The
   * snapshot exists only for the copies; it is removed once they are all made (or failed).
   */
  async fork(name: string, opts: { name?: string | undefined; count: number }, opId: string): Promise<{ snapshot: string; operations: OperationRef[] }> {
    if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > MAX_FORKS) throw new RpcError("bad_params", `count must be 1-${MAX_FORKS}, got ${opts.count}`);
    const source = this.mustGet(name);
    const names = forkNames(source.name, opts.count, this.env.vms.names(), opts.name);
    const problems = names.flatMap((n) => [checkVmName(n) ?? [], this.env.vms.getByName(n) !== undefined ? `a VM named ${n} already exists` : []].flat());
    if (problems.length > 0) throw new RpcError(problems.some((p) => p.includes("already exists")) ? "conflict" : "bad_params", `${problems.join("; ")}; pick another --name`);
    const snap = await this.snapshot(name, `${source.name}-fork-${randomBytes(4).toString("hex")}`, opId, "fork");
    const launched: { ref: OperationRef; done: Promise<unknown> }[] = [];
    try {
      for (const [i, n] of names.entries()) launched.push(await this.restoreInto(snap, { name: n, kind: "vm.fork", egress: getEgress(this.db, source.id) }, i === 0 ? opId : `${opId}${i.toString(36)}`));
    } finally {
      this.background(`snapshot:${snap.id}`, async () => {
        await Promise.allSettled(launched.map((l) => l.done));
        await this.removeSnapshot(snap, opId);
      });
    }
    return { snapshot: snap.name, operations: launched.map((l) => l.ref) };
  }

  /**
   * `image warm`: boot the image once (cold), snapshot it when ssh-ready, and keep that as the
   * image's template: later creates of that image and size restore from it instead of booting.
   * The template VM itself is removed; an older template is replaced only once the new one is ready.
   */
  async warm(imageName: string, sizeReq: { vcpus?: number | undefined; memoryMib?: number | undefined; diskGib?: number | undefined }, opId: string): Promise<SnapshotRecord> {
    const size = { vcpus: sizeReq.vcpus ?? this.defaults.vcpus, memoryMib: sizeReq.memoryMib ?? this.defaults.memoryMib, diskGib: sizeReq.diskGib ?? this.defaults.diskGib };
    const problems = checkVmSize(size, this.hostCpus);
    if (problems.length > 0) throw new RpcError("bad_params", problems.join("; "));
    const image = await this.image(imageName);
    const vmName = `warm-${randomBytes(4).toString("hex")}`;
    const boot = this.launchNew({ name: vmName, image, size, steps: this.createSteps, kind: "image.warm" }, opId);
    const booted = await boot.done;
    if (booted !== true) throw new RpcError("operation_failed", `booting image ${imageName} for its warm template failed: ${errorMessage(booted)}`);
    const final = templateName(image.name);
    try {
      const fresh = await this.snapshot(vmName, `${final}.new-${randomBytes(4).toString("hex")}`, opId, "template");
      const old = this.snapshots.getByName(final);
      if (old !== undefined) await this.removeSnapshot(old, opId);
      return this.snapshots.rename(fresh.id, final);
    } finally {
      try {
        await this.delete(vmName, true, opId);
      } catch (e) {
        this.env.logger.warn("the warm template's VM could not be removed", { op_id: opId, vm: vmName, error: errorMessage(e) });
      }
    }
  }

  listSnapshots(): SnapshotRecord[] {
    return this.snapshots.list();
  }

  mustGetSnapshot(name: string): SnapshotRecord {
    const snap = this.snapshots.getByName(name);
    if (snap === undefined) throw new RpcError("not_found", `no snapshot named ${JSON.stringify(name)}; see banger snapshot ls`);
    return snap;
  }

  /** `snapshot rm`: refused while a restore still reads it. VMs restored from it keep working (their disks are their own). */
  async deleteSnapshot(name: string, opId: string): Promise<SnapshotRecord> {
    const snap = this.mustGetSnapshot(name);
    if ((this.snapshotReaders.get(snap.id) ?? 0) > 0) throw new RpcError("conflict", `snapshot ${name} is being restored from; remove it once that is done`);
    await this.removeSnapshot(snap, opId);
    return snap;
  }

  private async removeSnapshot(snap: SnapshotRecord, opId: string): Promise<void> {
    await deleteSnapshot(this.env, this.snapshots, snap, opId);
    this.env.logger.info("snapshot removed", { op_id: opId, snapshot: snap.name, kind: snap.kind });
  }

  /** A new VM from `snap`, its disks cloned from the snapshot's, the VMM loading the saved state. */
  private async restoreInto(snap: SnapshotRecord, opts: { name: string | undefined; kind: string; ports?: readonly PortSpec[] | undefined; egress?: VmEgress | undefined }, opId: string): Promise<{ ref: OperationRef; done: Promise<unknown> }> {
    if (snap.state !== "ready") throw new RpcError("conflict", `snapshot ${snap.name} is still being saved`);
    if (snap.vmm !== this.env.deps.vmm.kind) throw new RpcError("bad_params", `snapshot ${snap.name} was taken of a ${snap.vmm} VM; this daemon runs ${this.env.deps.vmm.kind} VMs, which cannot load it`);
    if (snap.vmmVersion !== (await this.env.deps.vmm.stateCompatibility())) throw new RpcError("bad_params", `snapshot ${snap.name} was saved by another VMM build or machine type (${snap.vmmVersion}), which this one cannot load`);
    const dir = statePaths.snapshotDir(this.env.stateDir, snap.id);
    const present = async (path: string): Promise<string | undefined> => access(path).then(() => path, () => undefined);
    const image: ImageInfo = {
      name: snap.image,
      flavor: snap.flavor,
      kernelPath: snapshotFiles.kernel(dir),
      vmlinuxPath: await present(snapshotFiles.vmlinux(dir)),
      initrdPath: await present(snapshotFiles.initrd(dir)),
      rootfsPath: snapshotFiles.rootDisk(dir),
    };
    const source: RestoreSource = { rootDisk: snapshotFiles.rootDisk(dir), workDisk: snapshotFiles.workDisk(dir), saved: { state: snapshotFiles.vmState(dir), memory: snapshotFiles.memory(dir) } };
    this.snapshotReaders.set(snap.id, (this.snapshotReaders.get(snap.id) ?? 0) + 1);
    const release = (): void => {
      const n = (this.snapshotReaders.get(snap.id) ?? 1) - 1;
      if (n <= 0) this.snapshotReaders.delete(snap.id);
      else this.snapshotReaders.set(snap.id, n);
    };
    try {
      const launched = this.launchNew({ name: opts.name, image, size: { vcpus: snap.vcpus, memoryMib: snap.memoryMib, diskGib: snap.diskGib }, steps: this.restoreSteps, kind: opts.kind, source, ports: opts.ports, egress: opts.egress }, opId);
      void launched.done.finally(release);
      return launched;
    } catch (e) {
      release();
      throw e;
    }
  }

  /** Start-up: a snapshot still `saving` was cut off, a fork's snapshot outlived its forks: neither is kept. */
  private async settleSnapshots(opId: string): Promise<void> {
    for (const snap of this.snapshots.list()) {
      if (snap.state === "ready" && snap.kind !== "fork") continue;
      try {
        await this.removeSnapshot(snap, opId);
      } catch (e) {
        this.env.logger.warn("could not remove an unfinished snapshot", { op_id: opId, snapshot: snap.name, error: errorMessage(e) });
      }
    }
  }

  /** Steps already unwound; remove what create made outside the steps (record, VM dir). */
  private async afterFailedCreate(vm: VmRecord, e: unknown, op: TrackedOperation, opId: string): Promise<void> {
    const unwound = !(e instanceof StepFailedError) || e.cleanupErrors.length === 0;
    if (unwound) {
      try {
        // The steps are unwound; drop the VM's dir and record so no half-created VM is listed. A
        // launch cut off after the VMM was spawned (the helper died before answering) has no pid on
        // record: find that VMM by its identity and stop it too.
        const fresh = this.env.vms.getById(vm.id) ?? vm;
        const live = await this.liveVmm(fresh, opId);
        const wanted = new Set(["remove-vm-dir", "release-lease", "remove-vmm-files", ...(live !== undefined ? ["stop-vmm"] : [])]);
        await deleteVm(this.env, live ?? fresh, { opId, only: wanted }, "cleanup after failed create");
        this.env.vms.delete(vm.id);
        await this.resyncKnownHosts();
        op.fail(e);
        return;
      } catch (cleanupErr) {
        this.markError(vm.id, `${errorMessage(e)}; ${errorMessage(cleanupErr)}`);
        if (helperWasDown(cleanupErr)) {
          this.convergeLater(vm.id, "gone", "create");
          op.fail(new AggregateError([e, cleanupErr], `${errorMessage(e)}; ${errorMessage(cleanupErr)}; ${releasedLater(vm.name)}`));
          return;
        }
        op.fail(new AggregateError([e, cleanupErr], `${errorMessage(e)}; ${errorMessage(cleanupErr)}; run "banger vm rm --force ${vm.name}" to retry cleanup`));
        return;
      }
    }
    this.markError(vm.id, errorMessage(e));
    if (helperWasDown(e)) {
      this.convergeLater(vm.id, "gone", "create");
      op.fail(new Error(`${errorMessage(e)}; ${releasedLater(vm.name)}`, { cause: e }));
      return;
    }
    op.fail(new Error(`${errorMessage(e)}; some resources could not be released: run "banger vm rm --force ${vm.name}" to retry cleanup`, { cause: e }));
  }

  /** An already running VM is answered as it is (`changed: false`, and no operation is made to follow). */
  async start(name: string, opId: string): Promise<OperationRef & { changed?: false }> {
    const current = this.mustGet(name);
    if (current.state === "running") return { operation_id: opId, vm: { id: current.id, name: current.name }, changed: false };
    const image = await this.image(current.image);
    const vm = this.transition(name, ["stopped", "error"], "starting", "start");
    const op = this.beginOp(opId, "vm.start", vm, this.startSteps, () => { this.env.vms.setState(vm.id, current.state); });
    this.background(vm.id, async () => {
      try {
        await this.locks.run(vm.id, () => this.bootExisting(vm, image, op, opId));
      } catch (e) {
        await this.afterFailedStart(vm, e, op, opId);
        return;
      }
      this.finishUp(vm.id, op);
    });
    return { operation_id: opId, vm: { id: vm.id, name: vm.name } };
  }

  async restart(name: string, force: boolean, opId: string): Promise<OperationRef> {
    const current = this.mustGet(name);
    const image = await this.image(current.image);
    const vm = this.transition(name, ["running", "paused", "error", "stopped"], "stopping", "restart");
    const stopStep: Step<BootCtx> = {
      name: "stop",
      run: async () => {
        const fresh = this.env.vms.getById(vm.id) ?? vm;
        if (current.state === "paused" && !force) await this.thawForShutdown(fresh, opId);
        await runAll(stopActions(this.env, fresh, { force, opId }), `stopping ${vm.name}`);
        this.env.vms.setState(vm.id, "starting", { startedAt: null });
      },
    };
    const steps = [stopStep, ...this.startSteps];
    const op = this.beginOp(opId, "vm.restart", vm, steps, () => { this.env.vms.setState(vm.id, current.state); });
    this.background(vm.id, async () => {
      try {
        await this.locks.run(vm.id, () => this.bootExisting(this.env.vms.getById(vm.id) ?? vm, image, op, opId, steps));
      } catch (e) {
        await this.afterFailedStart(vm, e, op, opId);
        return;
      }
      this.finishUp(vm.id, op);
    });
    return { operation_id: opId, vm: { id: vm.id, name: vm.name } };
  }

  private async bootExisting(vm: VmRecord, image: ImageInfo, op: TrackedOperation, opId: string, steps: readonly BootEntry[] = this.startSteps): Promise<void> {
    const ctx = this.bootCtx(vm, image, opId);
    const root = rootDiskOf(vm);
    if (root !== undefined) ctx.root = root;
    if (vm.handles.work_disk !== undefined) ctx.workDisk = vm.handles.work_disk;
    op.onCancel((reason) => { this.aborters.get(vm.id)?.abort(reason); });
    await runSteps(steps, ctx, op.onProgress, ctx.signal);
  }

  private async afterFailedStart(vm: VmRecord, e: unknown, op: TrackedOperation, opId: string): Promise<void> {
    let unwound = !(e instanceof StepFailedError) || e.cleanupErrors.length === 0;
    if (unwound && helperWasDown(e)) {
      // A launch cut off by the helper's death may have spawned a VMM whose pid never reached the
      // record, so no undo knows of it: find it by its identity, or `stopped` would hide a live
      // guest (and the next start would be refused as a second VMM on the same disks).
      const fresh = this.env.vms.getById(vm.id) ?? vm;
      const live = await this.liveVmm(fresh, opId).catch(() => undefined);
      if (live !== undefined) {
        try {
          await runAll(stopActions(this.env, live, { force: true, opId }), `stopping the VMM of the failed start of ${vm.name}`);
        } catch (stopErr) {
          unwound = false;
          this.env.logger.warn("a VMM spawned by a cut-off launch could not be stopped yet", { op_id: opId, vm: vm.name, pid: live.handles.pid ?? null, error: errorMessage(stopErr) });
        }
      }
    }
    // A cleanly unwound start leaves a stopped VM (disks and lease kept); a dirty one is marked error so rm/stop can retry.
    this.env.vms.setState(vm.id, unwound ? "stopped" : "error", { lastError: errorMessage(e), startedAt: null });
    if (!unwound && helperWasDown(e)) this.convergeLater(vm.id, "stopped", "start");
    op.fail(e);
  }

  /**
   * Freezes a running VM's guest: no vCPU runs, so it uses no CPU, while its memory, lease, tap,
   * NAT and DNS name stay. Already paused: answered as it is. Under the VM's lock, so it never
   * overlaps a start, stop or delete.
   */
  async pause(name: string, opId: string): Promise<{ vm: VmRecord; changed: boolean }> {
    return this.setPaused(name, true, opId);
  }

  /** Thaws a paused VM: the guest carries on where it stopped. Already running: answered as it is. */
  async resume(name: string, opId: string): Promise<{ vm: VmRecord; changed: boolean }> {
    return this.setPaused(name, false, opId);
  }

  private async setPaused(name: string, paused: boolean, opId: string): Promise<{ vm: VmRecord; changed: boolean }> {
    const verb = paused ? "pause" : "resume";
    const from: VmState = paused ? "running" : "paused";
    const to: VmState = paused ? "paused" : "running";
    const vm = this.mustGet(name);
    return this.locks.run(vm.id, async () => {
      const cur = this.env.vms.getById(vm.id);
      if (cur === undefined) throw new RpcError("not_found", `VM ${name} was deleted`);
      if (cur.state === to) return { vm: cur, changed: false };
      if (cur.state !== from) throw new RpcError("conflict", `cannot ${verb} VM ${name}: it is ${cur.state}; ${verb} needs state ${from}${cur.state === "stopped" ? ` (start it with "banger vm start ${name}")` : ""}`);
      const vmm = vmmHandleOf(cur);
      if (vmm === undefined) throw new RpcError("operation_failed", `VM ${name} is ${cur.state} but has no VMM on record; stop it with "banger vm stop --force ${name}"`);
      try {
        await this.env.deps.vmm.setPaused(vmm, paused, opId);
      } catch (e) {
        if (helperWasDown(e)) throw new RpcError("unavailable", `${errorMessage(e)}; bangerd-root is not answering: try again once it is back`);
        throw new RpcError("operation_failed", `could not ${verb} ${name}: ${errorMessage(e)}`);
      }
      this.env.logger.info(paused ? "VM paused" : "VM resumed", { op_id: opId, vm: name });
      return { vm: this.env.vms.setState(cur.id, to), changed: true };
    });
  }

  /** `changed` is false when the VM was already stopped: as `docker stop`, that is not an error. */
  async stop(name: string, force: boolean, opId: string): Promise<VmRecord & { changed?: false }> {
    const before = this.mustGet(name);
    if (before.state === "stopped") return { ...before, changed: false };
    const wasPaused = before.state === "paused";
    const vm = this.transition(name, ["running", "paused", "error"], "stopping", "stop");
    return this.locks.run(vm.id, async () => {
      const fresh = this.env.vms.getById(vm.id) ?? vm;
      try {
        if (wasPaused && !force) await this.thawForShutdown(fresh, opId);
        await runAll(stopActions(this.env, fresh, { force, opId }), `stopping ${vm.name}`);
      } catch (e) {
        this.markError(vm.id, errorMessage(e));
        if (helperWasDown(e)) {
          this.convergeLater(vm.id, "stopped", "stop");
          throw new RpcError("unavailable", `${errorMessage(e)}; bangerd-root is not answering: banger finishes stopping ${vm.name} once it is back`);
        }
        throw new RpcError("operation_failed", `${errorMessage(e)}; the VM is marked error: retry with "banger vm stop --force ${vm.name}"`);
      }
      return this.env.vms.setState(vm.id, "stopped", { startedAt: null, lastError: null });
    });
  }

  async delete(name: string, force: boolean, opId: string): Promise<VmRecord> {
    const vm = this.mustGet(name);
    const busy: VmState[] = ["creating", "starting", "stopping"];
    if (!force && (vm.state === "running" || vm.state === "paused")) throw new RpcError("conflict", `VM ${name} is ${vm.state}: stop it first (banger vm stop ${name}) or delete with --force`);
    if (!force && busy.includes(vm.state)) throw new RpcError("conflict", `VM ${name} is ${vm.state}: wait for that to finish or delete with --force`);
    // --force interrupts a pending create/start (e.g. a guest that never becomes ssh-ready) instead of waiting it out.
    if (force) this.aborters.get(vm.id)?.abort(new Error(`VM ${name} is being deleted`));
    return this.locks.run(vm.id, async () => {
      const fresh = this.env.vms.getById(vm.id);
      if (fresh === undefined) return vm; // a failed create already removed it
      this.env.vms.setState(vm.id, "stopping");
      try {
        // A VMM the record lost (a launch cut off by the helper's death) is found by its identity,
        // so deleting the VM never leaves its guest running with no record of it.
        const withVmm = (await this.liveVmm(fresh, opId)) ?? fresh;
        await deleteVm(this.env, withVmm, { opId }, `deleting ${name}`);
      } catch (e) {
        this.markError(vm.id, errorMessage(e));
        if (helperWasDown(e)) {
          this.convergeLater(vm.id, "gone", "delete");
          throw new RpcError("unavailable", `${errorMessage(e)}; bangerd-root is not answering: banger finishes deleting ${name} once it is back`);
        }
        throw new RpcError("operation_failed", `${errorMessage(e)}; the VM is kept (state error) so nothing is lost track of: fix the cause and run "banger vm rm --force ${name}" again`);
      }
      this.env.vms.delete(vm.id);
      await this.resyncKnownHosts();
      return fresh;
    });
  }

  /**
   * Daemon start-up: nothing can be mid-flight any more. An operation the
   * previous daemon was killed in is unwound, and the VM's state says so: a
   * create leaves nothing (it never became usable), a start or stop ends in
   * `stopped`. A `running` VM whose VMM survived gets its DNS record back (the
   * DNS table lives in memory) and is watched again; one whose VMM died is
   * torn down to `stopped`. A VMM is found by its identity before anything is
   * torn down, so a record that lost its pid never orphans a live guest.
   */
  async reconcile(opId: string): Promise<ReconcileResult> {
    const out = { adopted: [] as string[], stopped: [] as string[], interrupted: [] as string[], failed: [] as string[] };
    for (const listed of this.env.vms.list()) {
      await this.locks.run(listed.id, async () => {
        const vm = this.env.vms.getById(listed.id);
        if (vm === undefined) return;
        if (vm.state === "creating" || vm.state === "starting" || vm.state === "stopping") {
          const withVmm = (await this.liveVmm(vm, opId)) ?? vm;
          try {
            if (vm.state === "creating") {
              await deleteVm(this.env, withVmm, { opId }, `unwinding the interrupted create of ${vm.name}`);
              this.env.vms.delete(vm.id);
              await this.resyncKnownHosts();
            } else {
              await runAll(stopActions(this.env, withVmm, { force: true, opId }), `unwinding the interrupted ${vm.state === "starting" ? "start" : "stop"} of ${vm.name}`);
              this.env.vms.setState(vm.id, "stopped", { startedAt: null, lastError: `the daemon restarted while this VM was ${vm.state}; it was stopped at start-up${vm.state === "starting" ? `: start it again with "banger vm start ${vm.name}"` : ""}` });
            }
            out.interrupted.push(vm.name);
          } catch (e) {
            this.markError(vm.id, `the daemon restarted while this VM was ${vm.state}, and unwinding it failed: ${errorMessage(e)}; run "banger vm rm --force ${vm.name}"`);
            out.failed.push(vm.name);
          }
          return;
        }
        // A paused VM's VMM holds its guest frozen across daemon restarts: adopted like a running one, it stays paused.
        if (vm.state !== "running" && vm.state !== "paused") return;
        const rebooted = startedBeforeReboot(this.env, vm);
        const adopted = await this.liveVmm(vm, opId);
        if (adopted !== undefined) {
          if (adopted.handles.ip !== undefined) await this.env.deps.dns.publish(adopted.name, adopted.handles.ip, opId);
          // Rules live in the kernel and outlive both daemons; applying the records again repairs any drift.
          if (adopted.handles.ip !== undefined && adopted.handles.tap !== undefined) {
            const guest = { ip: adopted.handles.ip, tap: adopted.handles.tap };
            await this.env.deps.ports.apply(vm.id, guest, opId);
            // Also refills the DNS server's map of which guest is under which policy (it died with the old daemon).
            await this.env.deps.egress.apply(vm.id, guest, opId);
          }
          this.watchVmm(adopted);
          out.adopted.push(vm.name);
          return;
        }
        // The VM keeps its lease and disks: `vm start` brings it back with the same IP and /root.
        const why = rebooted ? `the host rebooted since this VM started; start it again with "banger vm start ${vm.name}"` : "the VMM exited while the daemon was down";
        try {
          await runAll(stopActions(this.env, vm, { force: true, opId }), `cleaning up ${vm.name}`);
          this.env.vms.setState(vm.id, "stopped", { startedAt: null, lastError: why });
          out.stopped.push(vm.name);
        } catch (e) {
          this.markError(vm.id, `${why}, and cleanup failed: ${errorMessage(e)}`);
          out.failed.push(vm.name);
        }
      });
    }
    await this.settleSnapshots(opId);
    // Only now does every VM record say what it holds; anything else banger has on the host is an orphan.
    return { ...out, ...(await sweepOrphans(this.env, opId)) };
  }

  /**
   * The VM with a live VMM on record, or undefined when it has none. The record may be wrong (pid
   * lost, or naming another process now, or from before a reboot) while the VMM runs on: then it is
   * found by its identity and recorded, rather than a live guest being killed or duplicated.
   */
  private async liveVmm(vm: VmRecord, opId: string): Promise<VmRecord | undefined> {
    const recorded = vmmHandleOf(vm);
    if (recorded !== undefined && !startedBeforeReboot(this.env, vm) && (await this.env.deps.vmm.isAlive(recorded))) return vm;
    const found = await this.env.deps.vmm.find(vm.id, vm.handles.vmm_kind ?? vm.vmm);
    if (found === undefined) return undefined;
    this.env.logger.warn("re-adopted a VMM its record did not point at", { op_id: opId, vm: vm.name, recorded_pid: vm.handles.pid ?? null, pid: found.pid });
    return this.env.handles.save(vm.id, { vmm_kind: found.kind, pid: found.pid, control_socket: found.controlSocket, vmm: { ...found }, boot_id: this.env.bootId });
  }

  /**
   * A paused guest cannot act on ctrl-alt-del: thaw it so a graceful stop can happen. If that
   * fails, the stop ladder still ends the VMM with signals, which work on a frozen guest.
   */
  private async thawForShutdown(vm: VmRecord, opId: string): Promise<void> {
    const vmm = vmmHandleOf(vm);
    if (vmm === undefined) return;
    try {
      await this.env.deps.vmm.setPaused(vmm, false, opId);
    } catch (e) {
      this.env.logger.warn("could not resume a paused VM for a graceful stop; it is stopped by signals", { op_id: opId, vm: vm.name, error: errorMessage(e) });
    }
  }

  private transition(name: string, from: readonly VmState[], to: VmState, verb: string): VmRecord {
    return inTransaction(this.db, () => {
      const vm = this.mustGet(name);
      if (!from.includes(vm.state)) {
        const hint = vm.state === "running" && verb === "start" ? " (it is already running)" : vm.state === "stopped" && verb === "stop" ? " (it is already stopped)" : "";
        throw new RpcError("conflict", `cannot ${verb} VM ${name}: it is ${vm.state}${hint}; ${verb} needs state ${from.join(" or ")}`);
      }
      return this.env.vms.setState(vm.id, to);
    });
  }

  private beginOp(opId: string, kind: string, vm: VmRecord, steps: readonly BootEntry[], rollback: () => void): TrackedOperation {
    try {
      return this.tracker.begin(opId, kind, vm.name, stepNames(steps));
    } catch (e) {
      rollback();
      if (e instanceof DuplicateOperationError) throw new RpcError("conflict", e.message);
      throw e;
    }
  }

  private bootCtx(vm: VmRecord, image: ImageInfo, opId: string): BootCtx {
    const ac = new AbortController();
    this.aborters.set(vm.id, ac);
    return { env: this.env, opId, vmId: vm.id, name: vm.name, vcpus: vm.vcpus, memoryMib: vm.memoryMib, diskGib: vm.diskGib, vmDir: statePaths.vmDir(this.env.stateDir, vm.id), image, signal: ac.signal };
  }

  private finishUp(vmId: string, op: TrackedOperation, extra: Readonly<Record<string, string>> = {}): void {
    const rec = this.env.vms.setState(vmId, "running", { startedAt: new Date().toISOString(), lastError: null });
    this.watchVmm(rec);
    op.succeed({ id: rec.id, name: rec.name, ip: rec.handles.ip ?? null, ...extra });
  }

  /** From now on a VMM that exits on its own (crash, guest poweroff, kill) stops its VM at once. */
  private watchVmm(vm: VmRecord): void {
    const vmm = vmmHandleOf(vm);
    if (vmm === undefined) return;
    try {
      this.env.deps.vmm.watchExit(vmm, () => { this.background(vm.id, () => this.vmmExited(vm.id, vmm.pid)); });
    } catch (e) {
      this.env.logger.warn("cannot watch the VMM for exit; it is noticed at the next command", { vm: vm.name, pid: vmm.pid, error: errorMessage(e) });
    }
  }

  /**
   * The VMM of a running VM exited without banger asking: release what only a running VM holds
   * (tap, NAT, DNS record, active disk devices) and record why. Lease and disks stay, so `vm
   * start` brings it back as it was. A stop, restart or delete in progress owns the VM instead.
   */
  private async vmmExited(vmId: string, pid: number): Promise<void> {
    await this.locks.run(vmId, async () => {
      const vm = this.env.vms.getById(vmId);
      if (vm === undefined || (vm.state !== "running" && vm.state !== "paused") || vm.handles.pid !== pid) return;
      const opId = newOpId();
      const tail = vm.handles.console_log !== undefined ? await consoleTail(vm.handles.console_log) : "";
      const why = `the VMM (pid ${pid}) exited on its own${tail}`;
      this.env.logger.warn("VMM exited on its own", { op_id: opId, vm: vm.name, pid });
      try {
        await runAll(stopActions(this.env, vm, { force: true, opId }), `cleaning up ${vm.name}`);
        this.env.vms.setState(vm.id, "stopped", { startedAt: null, lastError: why });
      } catch (e) {
        this.markError(vm.id, `${why}; cleanup failed: ${errorMessage(e)}`);
      }
    });
  }

  /**
   * A concurrent create may have rebuilt known_hosts from a snapshot that
   * still held this VM; rebuilding after the row is gone guarantees no stale
   * key stays pinned for an IP the next VM will get.
   */
  private async resyncKnownHosts(): Promise<void> {
    try {
      await syncKnownHosts(this.env);
    } catch (e) {
      this.env.logger.warn("known_hosts rebuild failed", { error: errorMessage(e) });
    }
  }

  private markError(vmId: string, message: string): void {
    try {
      this.env.vms.setState(vmId, "error", { lastError: message });
    } catch (e) {
      this.env.logger.error("could not mark VM error", { vm: vmId, error: errorMessage(e) });
    }
  }

  private background(vmId: string, fn: () => Promise<void>): void {
    const p = fn()
      .catch((e: unknown) => { this.env.logger.error("background operation crashed", { vm: vmId, error: errorMessage(e) }); })
      .finally(() => {
        this.inflight.delete(p);
        this.aborters.delete(vmId);
      });
    this.inflight.add(p);
  }
}

const UNWIND_RETRY_MS = 2_000;
/** More copies than this at once would only queue behind the host's cores and disk. */
const MAX_FORKS = 16;

const releasedLater = (name: string): string => `bangerd-root was unreachable, so banger releases what is left of ${name} once it answers again`;
/** About ten minutes of retries: a helper down for longer needs a person anyway. */
const UNWIND_RETRIES = 300;

/** Whether an error (or one it aggregates or was caused by) says the root helper did not answer. */
export function helperWasDown(e: unknown, depth = 0): boolean {
  if (depth > 8 || e === null || typeof e !== "object") return false;
  if (e instanceof RpcError && e.code === "unavailable") return true;
  if (e instanceof AggregateError && e.errors.some((x) => helperWasDown(x, depth + 1))) return true;
  return helperWasDown((e as { cause?: unknown }).cause, depth + 1);
}
