import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/**
 * Root-helper methods for disks: dm-snapshot root disks (loop devices +
 * device-mapper need root) and ext4 edits of root-owned images such as
 * /dev/mapper/fc-rootfs-*. Names and params follow the seeds. Schemas only
 * check shapes; the helper validates every value (see roothelper/methods/disks.ts).
 */

const empty = z.object({}).strict();

export const dmSnapshotHandlesSchema = z
  .object({
    base_loop: z.string(),
    cow_loop: z.string(),
    dm_name: z.string(),
    dm_dev: z.string(),
  })
  .strict();
export type DmSnapshotHandles = z.output<typeof dmSnapshotHandlesSchema>;

export const privCreateDmSnapshot = defineMethod(
  "priv.create_dm_snapshot",
  z.object({ rootfs_path: z.string(), cow_path: z.string(), dm_name: z.string() }).strict(),
  dmSnapshotHandlesSchema,
);

/**
 * Every field may be "" (a half-created snapshot): what is named is released.
 * `rootfs_path` / `cow_path` (additions to the seeds' handles) pin which file
 * each loop must be backed by: loop numbers are reused once a stopped VM's
 * devices are released, and stale handles must never detach another VM's loop.
 */
export const privCleanupDmSnapshot = defineMethod(
  "priv.cleanup_dm_snapshot",
  z
    .object({
      base_loop: z.string().default(""),
      cow_loop: z.string().default(""),
      dm_name: z.string().default(""),
      dm_dev: z.string().default(""),
      rootfs_path: z.string().default(""),
      cow_path: z.string().default(""),
    })
    .strict(),
  empty,
);

export const privFsckSnapshot = defineMethod("priv.fsck_snapshot", z.object({ dm_dev: z.string() }).strict(), empty);

const ext4WriteSchema = z
  .object({
    guest_path: z.string(),
    /** File content, base64. */
    data: z.string(),
    mode: z.number().int(),
    uid: z.number().int().default(0),
    gid: z.number().int().default(0),
  })
  .strict();

const ext4DirSchema = z.object({ guest_path: z.string(), mode: z.number().int(), uid: z.number().int().default(0), gid: z.number().int().default(0) }).strict();

export const privWriteExt4Files = defineMethod(
  "priv.write_ext4_files",
  z.object({ image_path: z.string(), files: z.array(ext4WriteSchema).max(256), dirs: z.array(ext4DirSchema).max(64).default([]) }).strict(),
  empty,
);

/** Whether this host can do dm-snapshot root disks (device-mapper + dmsetup usable by the helper). */
export const privStorageCaps = defineMethod("priv.storage_caps", empty, z.object({ dm_snapshot: z.boolean(), reason: z.string() }));
