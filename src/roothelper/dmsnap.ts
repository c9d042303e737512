import { sep } from "node:path";
import { loopBackingFile } from "./fs/dm-device.js";
import { CommandError, runText, type Runner } from "../system/runner.js";
import type { DmSnapshotHandles } from "../rpc/priv/disks.js";

/**
 * dm-snapshot root disks (the seeds' choice): the image is attached
 * read-only on one loop device, the VM's sparse COW file on another, and
 * `dmsetup create fc-rootfs-<id>` stacks a persistent snapshot target on top.
 * Writes land in the COW file; the image is never written.
 *
 * NOT yet verified on a real device-mapper host: the command sequences are
 * tested through the FakeRunner only (the development machine has no dm).
 */

/**
 * Loop and dm allocation is serialized: `losetup --find` picks the first free
 * device and two concurrent creates can race for it (and a failed create's
 * rollback must not detach a device a concurrent create just took). One
 * helper process serves all requests, so an in-process lock is enough.
 */
let chain: Promise<unknown> = Promise.resolve();
export function withAllocationLock<T>(fn: () => Promise<T>): Promise<T> {
  const run = chain.then(fn, fn);
  chain = run.catch(() => undefined);
  return run;
}

/** Persistent snapshot, 8-sector (4 KiB) chunks: small enough to keep COW growth close to what the guest wrote. */
export const SNAPSHOT_CHUNK_SECTORS = 8;

export async function createDmSnapshot(runner: Runner, rootfsPath: string, cowPath: string, dmName: string): Promise<DmSnapshotHandles> {
  return withAllocationLock(async () => {
    const handles: DmSnapshotHandles = { base_loop: "", cow_loop: "", dm_name: "", dm_dev: "" };
    try {
      handles.base_loop = await runText(runner, ["losetup", "--find", "--show", "--read-only", "--", rootfsPath]);
      handles.cow_loop = await runText(runner, ["losetup", "--find", "--show", "--", cowPath]);
      const sectors = await runText(runner, ["blockdev", "--getsz", handles.base_loop]);
      if (!/^[1-9][0-9]*$/.test(sectors)) throw new Error(`blockdev --getsz ${handles.base_loop} printed ${JSON.stringify(sectors)}, not a sector count`);
      const table = `0 ${sectors} snapshot ${handles.base_loop} ${handles.cow_loop} P ${SNAPSHOT_CHUNK_SECTORS}`;
      // Named before the attempt so a rollback also removes a target that
      // `dmsetup create` left half-made (created but table load failed).
      handles.dm_name = dmName;
      await runner.run(["dmsetup", "create", dmName, "--table", table]);
      handles.dm_dev = `/dev/mapper/${dmName}`;
      return handles;
    } catch (e) {
      // Undo what this call attached (names we learned only), then report both.
      try {
        await cleanupDmSnapshotUnlocked(runner, handles, { stateDir: undefined });
      } catch (undo) {
        throw new AggregateError([e, undo], `creating dm snapshot ${dmName} failed and its rollback failed too`);
      }
      throw e;
    }
  });
}

export interface CleanupOptions {
  /**
   * When set, a loop device is detached only if its backing file lies inside
   * this dir: loop numbers are reused, and after a host reboot the handles
   * persisted with a VM may name a device that now belongs to someone else.
   */
  readonly stateDir: string | undefined;
  /** When set, the exact backing file each loop must have (real paths); any other file means "not ours any more": skip it. */
  readonly expectedBacking?: { readonly base?: string | undefined; readonly cow?: string | undefined };
  readonly sysRoot?: string;
}

/** Collect-and-continue teardown: dm target, then the COW loop, then the base loop. Missing pieces are fine. */
export function cleanupDmSnapshot(runner: Runner, handles: DmSnapshotHandles, opts: CleanupOptions): Promise<void> {
  return withAllocationLock(() => cleanupDmSnapshotUnlocked(runner, handles, opts));
}

async function cleanupDmSnapshotUnlocked(runner: Runner, handles: DmSnapshotHandles, opts: CleanupOptions): Promise<void> {
  const errors: unknown[] = [];
  if (handles.dm_name !== "") {
    try {
      await removeDmTarget(runner, handles.dm_name);
    } catch (e) {
      errors.push(e);
    }
  }
  for (const [loop, expected] of [
    [handles.cow_loop, opts.expectedBacking?.cow],
    [handles.base_loop, opts.expectedBacking?.base],
  ] as const) {
    if (loop === "") continue;
    try {
      await detachLoop(runner, loop, opts, expected);
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `releasing dm snapshot ${handles.dm_name || handles.cow_loop} failed in ${errors.length} steps`);
}

function isGone(e: unknown): boolean {
  return e instanceof CommandError && /No such device|not found|does not exist|No such file/i.test(e.stderr);
}

async function removeDmTarget(runner: Runner, name: string): Promise<void> {
  try {
    // --retry: udev may still hold the device open for a moment after the VMM exits.
    await runner.run(["dmsetup", "remove", "--retry", name]);
  } catch (e) {
    if (!isGone(e)) throw e;
  }
}

async function detachLoop(runner: Runner, loop: string, opts: CleanupOptions, expected: string | undefined): Promise<void> {
  if (opts.stateDir !== undefined) {
    const backing = loopBackingFile(loop, opts.sysRoot);
    if (backing === undefined) return; // already detached
    // A stale handle (VM stopped, its loops released and reused by another
    // VM): the device is someone else's now, so there is nothing of ours to release.
    if (expected !== undefined && backing !== expected) return;
    if (!backing.startsWith(opts.stateDir + sep)) {
      throw new Error(`refusing to detach ${loop}: it is backed by ${backing}, not by a banger file in ${opts.stateDir}`);
    }
  }
  try {
    await runner.run(["losetup", "--detach", loop]);
  } catch (e) {
    if (!isGone(e)) throw e;
  }
}

/**
 * e2fsck -fy of the snapshot before boot, on a descriptor the caller opened
 * (e2fsck gets it as fd 3); exit 1 means "errors fixed", which is fine.
 */
export async function fsckSnapshot(runner: Runner, deviceFd: number): Promise<void> {
  await runner.run(["e2fsck", "-fy", "/proc/self/fd/3"], { okExitCodes: [1], timeoutMs: 10 * 60_000, extraFds: [deviceFd] });
}
