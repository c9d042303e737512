import { existsSync } from "node:fs";
import { open, rm, stat } from "node:fs/promises";
import { vmFiles } from "../../paths/paths.js";
import { privCleanupDmSnapshot, privCreateDmSnapshot, privFsckSnapshot } from "../../rpc/priv/disks.js";
import type { HelperClient } from "../helper-client.js";
import type { CloneOptions, CloneStrategy, RootDiskHandles } from "./types.js";

type DmHandles = Extract<RootDiskHandles, { kind: "dm-snapshot" }>;

export function cowSizeFor(imageBytes: number): number {
  const MIB = 1024 * 1024;
  return Math.ceil((imageBytes + Math.ceil(imageBytes / 128) + MIB) / MIB) * MIB;
}

/** dm target names carry the banger prefix the root helper insists on. */
export function dmNameFor(vmId: string): string {
  return `fc-rootfs-${vmId}`;
}

/**
 * The seeds' strategy: a device-mapper snapshot over the read-only image,
 * writes going to a sparse per-VM COW file. All device work happens in the
 * root helper; the daemon only owns the COW file.
 *
 * NOT yet verified on a real device-mapper host (none here): covered by
 * FakeRunner tests of the helper's command sequences and by tests of this
 * module against a recording helper client.
 */
export function dmSnapshotStrategy(helper: HelperClient, stateDir: string, exists: (p: string) => boolean = existsSync): CloneStrategy {
  async function attach(imageRootfs: string, cowPath: string, opts: CloneOptions): Promise<DmHandles> {
    const h = await helper.call(privCreateDmSnapshot, { rootfs_path: imageRootfs, cow_path: cowPath, dm_name: dmNameFor(opts.vmId) }, opts.opId);
    const handles: DmHandles = { kind: "dm-snapshot", path: h.dm_dev, cow_path: cowPath, base_path: imageRootfs, base_loop: h.base_loop, cow_loop: h.cow_loop, dm_name: h.dm_name, dm_dev: h.dm_dev };
    try {
      await helper.call(privFsckSnapshot, { dm_dev: h.dm_dev }, opts.opId, 10 * 60_000);
    } catch (e) {
      await releaseHandles(handles, opts.opId).catch(() => undefined);
      throw e;
    }
    return handles;
  }

  async function releaseHandles(handles: DmHandles, opId: string): Promise<void> {
    await helper.call(
      privCleanupDmSnapshot,
      { base_loop: handles.base_loop, cow_loop: handles.cow_loop, dm_name: handles.dm_name, dm_dev: handles.dm_dev, rootfs_path: handles.base_path, cow_path: handles.cow_path },
      opId,
    );
  }

  return {
    name: "dm-snapshot",
    describe: () => `dm-snapshot (device-mapper COW over a read-only loop) in ${stateDir}`,
    async clone(imageRootfs, vmDir, opts) {
      const cowPath = vmFiles.cowFile(vmDir);
      // A sparse COW file that can hold every chunk of the image rewritten
      // plus the persistent exception table (16 bytes per 4 KiB chunk, i.e.
      // 1/256, plus a header chunk): a full COW store invalidates the
      // snapshot. Holes cost nothing, so sizing for the worst case is free.
      const { size } = await stat(imageRootfs);
      const fh = await open(cowPath, "wx", 0o600);
      try {
        await fh.truncate(cowSizeFor(size));
      } finally {
        await fh.close();
      }
      try {
        return await attach(imageRootfs, cowPath, opts);
      } catch (e) {
        await rm(cowPath, { force: true });
        throw e;
      }
    },
    async prepareBoot(handles, opts) {
      if (handles.kind !== "dm-snapshot") throw new Error(`dm-snapshot cannot boot a ${handles.kind} root disk`);
      if (exists(handles.dm_dev)) {
        await helper.call(privFsckSnapshot, { dm_dev: handles.dm_dev }, opts.opId, 10 * 60_000);
        return handles;
      }
      if (!exists(handles.base_path)) throw new Error(`${handles.dm_dev} is gone and its image ${handles.base_path} was deleted; delete and recreate the VM`);
      // Loop numbers from before a stop/reboot may belong to another VM now;
      // the helper detaches a loop only if it is still backed by OUR files.
      await releaseHandles(handles, opts.opId);
      return attach(handles.base_path, handles.cow_path, opts);
    },
    async deactivate(handles, opId) {
      if (handles.kind !== "dm-snapshot") throw new Error(`dm-snapshot cannot deactivate a ${handles.kind} root disk`);
      // Devices go, the COW file (the VM's disk contents) stays for the next start.
      await releaseHandles(handles, opId);
    },
    async release(handles, opId) {
      if (handles.kind !== "dm-snapshot") throw new Error(`dm-snapshot cannot release a ${handles.kind} root disk`);
      const errors: unknown[] = [];
      try {
        await releaseHandles(handles, opId);
      } catch (e) {
        errors.push(e);
      }
      try {
        await rm(handles.cow_path, { force: true });
      } catch (e) {
        errors.push(e);
      }
      if (errors.length > 0) throw new AggregateError(errors, `releasing root disk ${handles.dm_name} failed`);
    },
  };
}
