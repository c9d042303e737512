import { rm } from "node:fs/promises";
import type { FileSyncEntry } from "../../config/schema.js";
import { state, vmFiles } from "../../paths/paths.js";
import { privWriteExt4Files } from "../../rpc/priv/disks.js";
import type { SystemInfo } from "../../rpc/daemon/system.js";
import type { Runner } from "../../system/runner.js";
import type { HelperClient } from "../helper-client.js";
import { detectCloneStrategy, makeStrategy, type StrategyChoice } from "./detect.js";
import { writeExt4Files, type Ext4Dir, type Ext4File } from "./ext4.js";
import { planFileSync } from "./file-sync.js";
import type { CloneOptions, CloneStrategy, RootDiskHandles } from "./types.js";
import { WorkDiskTemplates, type WorkDiskContents } from "./work-disk-templates.js";
import { resizeExt4Image } from "./work-disk.js";
import { cloneOrCopy, sparseCopy } from "../../system/sparse-copy.js";
import { SpareCopies } from "./spare-copies.js";

export interface StorageDeps {
  readonly stateDir: string;
  readonly configured: "auto" | CloneStrategy["name"];
  readonly runner: Runner;
  readonly helper?: HelperClient | undefined;
}

export interface CloneRootOptions extends CloneOptions {
  /** Grow the clone to this many bytes (`--root-size`); must not be smaller than the image. */
  readonly rootSizeBytes?: number | undefined;
}

/**
 * What VM create/start/delete use for disks. The strategy is detected once
 * per daemon (a probe clone in the state dir) and cached; releasing always
 * uses the strategy recorded in the handles, so changing the config never
 * strands an existing VM's devices.
 */
export class StorageService {
  private choicePromise: Promise<StrategyChoice> | undefined;
  private readonly templates: WorkDiskTemplates;
  private readonly spares: SpareCopies;

  constructor(private readonly deps: StorageDeps) {
    this.templates = new WorkDiskTemplates(deps.runner, deps.stateDir);
    this.spares = new SpareCopies(state.spareCopiesDir(deps.stateDir));
  }

  /** Resolves when no disk copy is being made ahead for the next create (tests, benchmarks). */
  idle(): Promise<void> {
    return this.spares.idle();
  }

  get runner(): Runner {
    return this.deps.runner;
  }

  choice(opId: string): Promise<StrategyChoice> {
    this.choicePromise ??= detectCloneStrategy({ stateDir: this.deps.stateDir, configured: this.deps.configured, helper: this.deps.helper, opId }).catch((e: unknown) => {
      this.choicePromise = undefined;
      throw e;
    });
    return this.choicePromise;
  }

  async strategy(opId: string): Promise<CloneStrategy> {
    return this.strategyFor((await this.choice(opId)).strategy);
  }

  private strategyFor(kind: RootDiskHandles["kind"]): CloneStrategy {
    return makeStrategy(kind, { stateDir: this.deps.stateDir, helper: this.deps.helper, copy: (src, dst) => this.spares.take(src, dst, sparseCopy) });
  }

  /** A VM's own root disk (/dev/vda), optionally grown; nothing is left behind on failure. */
  async cloneRoot(imageRootfs: string, vmDir: string, opts: CloneRootOptions): Promise<RootDiskHandles> {
    const strategy = await this.strategy(opts.opId);
    const handles = await strategy.clone(imageRootfs, vmDir, opts);
    if (opts.rootSizeBytes === undefined) return handles;
    try {
      if (handles.kind === "dm-snapshot") throw new Error("--root-size is not supported with dm-snapshot root disks (the snapshot is as large as its image); use reflink or copy");
      await resizeExt4Image(this.deps.runner, handles.path, opts.rootSizeBytes);
      return handles;
    } catch (e) {
      await strategy.release(handles, opts.opId).catch(() => undefined);
      throw e;
    }
  }

  prepareBoot(handles: RootDiskHandles, opts: CloneOptions): Promise<RootDiskHandles> {
    return this.strategyFor(handles.kind).prepareBoot(handles, opts);
  }

  /** VM stopped: devices released (dm-snapshot), contents kept. Idempotent. */
  deactivateRoot(handles: RootDiskHandles, opId: string): Promise<void> {
    return this.strategyFor(handles.kind).deactivate(handles, opId);
  }

  /** Removes the clone and everything it holds (devices, COW file). Idempotent. */
  releaseRoot(handles: RootDiskHandles, opId: string): Promise<void> {
    return this.strategyFor(handles.kind).release(handles, opId);
  }

  /** Files into the root disk: debugfs directly on a file clone, through the root helper on a root-owned dm device. */
  async writeRootFiles(handles: RootDiskHandles, files: readonly Ext4File[], dirs: readonly Ext4Dir[], opId: string): Promise<void> {
    if (handles.kind !== "dm-snapshot") {
      await writeExt4Files(this.deps.runner, handles.path, files, dirs);
      return;
    }
    if (this.deps.helper === undefined) throw new Error("writing into a dm-snapshot root disk needs the root helper");
    await this.deps.helper.call(
      privWriteExt4Files,
      {
        image_path: handles.dm_dev,
        files: files.map((f) => ({ guest_path: f.path, data: Buffer.from(f.data).toString("base64"), mode: f.mode, uid: f.uid ?? 0, gid: f.gid ?? 0 })),
        dirs: dirs.map((d) => ({ guest_path: d.path, mode: d.mode, uid: d.uid ?? 0, gid: d.gid ?? 0 })),
      },
      opId,
      120_000,
    );
  }

  /** The persistent /root disk (/dev/vdb) holding `contents`: a clone of the matching template. */
  async createWorkDisk(vmDir: string, sizeGib: number, contents: WorkDiskContents): Promise<string> {
    const path = vmFiles.workDisk(vmDir);
    try {
      await this.spares.take(await this.templates.get(sizeGib, contents), path, cloneOrCopy);
    } catch (e) {
      throw new Error(`creating work disk ${path} failed: ${(e as Error).message}`, { cause: e });
    }
    return path;
  }

  /**
   * `dest` (new) becomes a copy of `source`: reflink where the filesystem can, else a sparse copy;
   * a copy made ahead for this source (spare-copies.ts) is used when there is one.
   */
  async cloneFile(source: string, dest: string, opts: { spare: boolean }): Promise<void> {
    try {
      if (opts.spare) await this.spares.take(source, dest, cloneOrCopy);
      else await cloneOrCopy(source, dest);
    } catch (e) {
      throw new Error(`copying ${source} to ${dest} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Sources that are going away (a removed snapshot's disks): their spares go too. */
  async dropSpares(sources: readonly string[]): Promise<void> {
    for (const src of sources) await this.spares.drop(src);
  }

  /** Copies the config's file_sync entries from `home` into the VM's root and work disks. */
  async syncFiles(handles: RootDiskHandles | undefined, workDisk: string | undefined, entries: readonly FileSyncEntry[], home: string, opId: string): Promise<void> {
    if (entries.length === 0) return;
    const plan = await planFileSync(entries, home);
    if (handles !== undefined && plan.root.files.length + plan.root.dirs.length > 0) await this.writeRootFiles(handles, plan.root.files, plan.root.dirs, opId);
    if (workDisk !== undefined && plan.work.files.length + plan.work.dirs.length > 0) await writeExt4Files(this.deps.runner, workDisk, plan.work.files, plan.work.dirs);
  }

  /**
   * Everything disk-shaped a VM had: root clone (devices included), COW
   * file, work disk. Collect-and-continue; safe to call again after a
   * partial failure. `handles` may be undefined when create failed before cloning.
   */
  async releaseVm(vmDir: string, handles: RootDiskHandles | undefined, opId: string): Promise<void> {
    const errors: unknown[] = [];
    if (handles !== undefined) {
      try {
        await this.strategyFor(handles.kind).release(handles, opId);
      } catch (e) {
        errors.push(e);
      }
    }
    for (const p of [vmFiles.workDisk(vmDir), vmFiles.rootDisk(vmDir), vmFiles.cowFile(vmDir)]) {
      try {
        await rm(p, { force: true });
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `releasing the disks of ${vmDir} failed in ${errors.length} step(s)`);
  }

  /** The `storage` section of system.info / doctor. */
  async info(opId: string): Promise<Pick<SystemInfo, "storage">> {
    try {
      const c = await this.choice(opId);
      return { storage: { clone_strategy: c.strategy, reason: c.reason, advice: c.advice } };
    } catch (e) {
      return { storage: { clone_strategy: "unknown", reason: `detection failed: ${(e as Error).message}`, advice: "" } };
    }
  }
}
