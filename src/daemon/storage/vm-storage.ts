import { homedir } from "node:os";
import { rm } from "node:fs/promises";
import type { FileSyncEntry } from "../../config/schema.js";
import type { DaemonEnv } from "../env.js";
import type { InfoContributor } from "../methods/system.js";
import type { GuestEdits, ImageInfo, RootDisk, StorageDeps } from "../vm/deps.js";
import { readExt4FileIfExists, writeExt4Files, type Ext4Dir, type Ext4File } from "./ext4.js";
import { StorageService } from "./service.js";
import { resizeExt4Image } from "./work-disk.js";
import { rootDiskHandlesSchema, type RootDiskHandles } from "./types.js";

/**
 * The storage side of the VM lifecycle (`VmDeps.storage`), on top of
 * StorageService. file_sync entries are copied once, when the disks are
 * made: root-disk entries at clone time, /root entries into the new work
 * disk; the lifecycle's own injections (hostname, network, keys) come after
 * and therefore win.
 */
export interface VmStorageOptions {
  readonly fileSync: readonly FileSyncEntry[];
  /** The owner's home: the only allowed file_sync source. */
  readonly home: string;
}

/** RootDisk (the lifecycle's opaque record) <-> our typed handles. `strategy` mirrors `kind`. */
export function toRootDisk(h: RootDiskHandles): RootDisk {
  return { strategy: h.kind, ...h };
}

export function fromRootDisk(root: RootDisk): RootDiskHandles {
  // `strategy` is our copy of `kind`; the strict schema would reject it.
  const rest: Record<string, unknown> = { ...root };
  delete rest["strategy"];
  const parsed = rootDiskHandlesSchema.safeParse(rest);
  if (!parsed.success) throw new Error(`root disk record is not one storage wrote (strategy ${root.strategy}): ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

function ext4Edits(edits: GuestEdits): { files: Ext4File[]; dirs: Ext4Dir[] } {
  return {
    files: edits.files.map((f) => ({ path: f.path, data: f.content, mode: f.mode, uid: f.uid, gid: f.gid })),
    dirs: edits.dirs.map((d) => ({ path: d.path, mode: d.mode, uid: d.uid, gid: d.gid })),
  };
}

function vmIdOf(h: RootDiskHandles): string {
  return h.kind === "dm-snapshot" ? h.dm_name.slice("fc-rootfs-".length) : "";
}

export function vmStorage(service: StorageService, opts: VmStorageOptions): StorageDeps {
  return {
    async cloneRoot(req: { vmId: string; vmDir: string; image: ImageInfo; rootSizeBytes?: number | undefined }, opId: string) {
      const handles = await service.cloneRoot(req.image.rootfsPath, req.vmDir, { vmId: req.vmId, opId, rootSizeBytes: req.rootSizeBytes });
      try {
        await service.syncFiles(handles, undefined, opts.fileSync, opts.home, opId);
      } catch (e) {
        await service.releaseRoot(handles, opId).catch(() => undefined);
        throw e;
      }
      return toRootDisk(handles);
    },
    async activateRoot(root, opId) {
      const h = fromRootDisk(root);
      return toRootDisk(await service.prepareBoot(h, { vmId: vmIdOf(h), opId }));
    },
    deactivateRoot: (root, opId) => service.deactivateRoot(fromRootDisk(root), opId),
    async growRoot(root, bytes) {
      const h = fromRootDisk(root);
      if (h.kind === "dm-snapshot") throw new Error("a dm-snapshot root disk cannot be grown (the snapshot is as large as its image); VMs on reflink or copy storage can");
      await resizeExt4Image(service.runner, h.path, bytes);
    },
    readImageFile: (image, path) => readExt4FileIfExists(service.runner, image.rootfsPath, path),
    growWorkDisk: (path, bytes) => resizeExt4Image(service.runner, path, bytes),
    destroyRoot: (root, opId) => service.releaseRoot(fromRootDisk(root), opId),
    async createWorkDisk(req, opId) {
      const path = await service.createWorkDisk(req.vmDir, req.sizeGib, ext4Edits(req.contents));
      try {
        await service.syncFiles(undefined, path, opts.fileSync, opts.home, opId);
      } catch (e) {
        await rm(path, { force: true });
        throw e;
      }
      return path;
    },
    async cloneRootFrom(req, opId) {
      return toRootDisk(await service.cloneRoot(req.source, req.vmDir, { vmId: req.vmId, opId }));
    },
    cloneFile: (source, dest, opts) => service.cloneFile(source, dest, opts),
    dropSpares: (sources) => service.dropSpares(sources),
    async destroyWorkDisk(path) {
      await rm(path, { force: true });
    },
    async injectFiles(disk, edits: GuestEdits, opId) {
      const { files, dirs } = ext4Edits(edits);
      if (disk.kind === "root") await service.writeRootFiles(fromRootDisk(disk.root), files, dirs, opId);
      else await writeExt4Files(service.runner, disk.path, files, dirs);
    },
  };
}

export interface DaemonStorage {
  readonly service: StorageService;
  /** `VmDeps.storage` for the lifecycle wiring. */
  readonly deps: StorageDeps;
  /** `system.info` contributor: `storage: {clone_strategy, reason, advice}`. */
  readonly info: InfoContributor;
}

// One per daemon env, so the registry's info contributor and the lifecycle
// wiring share one detection (and one cached strategy).
const perEnv = new WeakMap<DaemonEnv, DaemonStorage>();

/** The daemon's storage, from its env: state dir, config (strategy, file_sync), runner, root helper. */
export function daemonStorage(env: DaemonEnv): DaemonStorage {
  let s = perEnv.get(env);
  if (s === undefined) {
    s = makeDaemonStorage(env);
    perEnv.set(env, s);
  }
  return s;
}

function makeDaemonStorage(env: DaemonEnv): DaemonStorage {
  const service = new StorageService({ stateDir: env.layout.stateDir, configured: env.config.storage.clone_strategy, runner: env.runner, helper: env.helper });
  return {
    service,
    deps: vmStorage(service, { fileSync: env.config.file_sync, home: process.env["HOME"] ?? homedir() }),
    info: (opId) => service.info(opId),
  };
}
