import { z } from "zod";

/** The names accepted by `storage.clone_strategy` (besides "auto"). */
export const CLONE_STRATEGY_NAMES = ["dm-snapshot", "reflink", "copy"] as const;
export type CloneStrategyName = (typeof CLONE_STRATEGY_NAMES)[number];

/**
 * What a root disk clone leaves behind, persisted with the VM (state store
 * and handles.json) so a restarted daemon can find and release it.
 * `path` is what the VMM opens as /dev/vda.
 */
export const rootDiskHandlesSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("reflink"), path: z.string() }).strict(),
  z.object({ kind: z.literal("copy"), path: z.string() }).strict(),
  z
    .object({
      kind: z.literal("dm-snapshot"),
      /** /dev/mapper/fc-rootfs-<id>: the VMM's /dev/vda. */
      path: z.string(),
      cow_path: z.string(),
      /** The image rootfs the snapshot is over; needed to re-attach after a host reboot. */
      base_path: z.string(),
      base_loop: z.string(),
      cow_loop: z.string(),
      dm_name: z.string(),
      dm_dev: z.string(),
    })
    .strict(),
]);
export type RootDiskHandles = z.output<typeof rootDiskHandlesSchema>;

export interface CloneOptions {
  /** 32-hex VM id; names the dm target. */
  readonly vmId: string;
  /** Op id of the request being served (forwarded to the root helper). */
  readonly opId: string;
}

/**
 * One way of giving a VM its own writable copy of an image's rootfs. Every
 * implementation must make `clone` cost the same whatever the image size
 * (except `copy`, the always-works fallback) and `release` idempotent:
 * releasing twice, or releasing a half-created clone, succeeds.
 */
export interface CloneStrategy {
  readonly name: CloneStrategyName;
  clone(imageRootfs: string, vmDir: string, opts: CloneOptions): Promise<RootDiskHandles>;
  /**
   * Called before every boot. dm-snapshot re-attaches what a host reboot
   * dropped (loop devices and dm targets do not survive one; the persistent
   * COW file does) and fscks the snapshot as the seeds do. Returns the
   * handles to persist (they change when devices were re-attached).
   */
  prepareBoot(handles: RootDiskHandles, opts: CloneOptions): Promise<RootDiskHandles>;
  /** VM stopped: give back devices (dm-snapshot's loops and target), keep the disk contents. Idempotent. */
  deactivate(handles: RootDiskHandles, opId: string): Promise<void>;
  release(handles: RootDiskHandles, opId: string): Promise<void>;
  /** One line for logs and `doctor`, e.g. "reflink (FICLONE) in /var/lib/banger". */
  describe(): string;
}
