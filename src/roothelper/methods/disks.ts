import { accessSync, closeSync, constants, fchownSync } from "node:fs";
import { checkGuestPath, writeExt4Files, type Ext4Dir, type Ext4File } from "../../daemon/storage/ext4.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import {
  privCleanupDmSnapshot,
  privCreateDmSnapshot,
  privFsckSnapshot,
  privStorageCaps,
  privWriteExt4Files,
} from "../../rpc/priv/disks.js";
import type { PeerCred } from "../../system/peercred.js";
import { runText, type Runner } from "../../system/runner.js";
import { cleanupDmSnapshot, createDmSnapshot, fsckSnapshot } from "../dmsnap.js";
import type { HelperEnv } from "../env.js";
import { named, openRegular } from "../fs/beneath.js";
import { openDmDevice } from "../fs/dm-device.js";
import { realPathOf, relativeTo } from "../fs/managed-root.js";
import * as v from "../validate.js";

function bad(field: string, why: string): RpcError {
  return new RpcError("bad_params", `${field}: ${why}`);
}

function failed(what: string, e: unknown): RpcError {
  return new RpcError("operation_failed", `${what}: ${e instanceof Error ? e.message : String(e)}`);
}

/**
 * A file or device opened by the helper itself. Root's tools (losetup) get
 * it as /proc/<helper pid>/fd/N, parsers (running as the owner) inherit `fd`:
 * either way the magic link names the inode that was opened and checked, so
 * the tool acts on it whatever the owner renames afterwards.
 */
interface HeldFile {
  readonly fd: number;
  readonly procPath: string;
  close(): void;
}

function hold(fd: number): HeldFile {
  return {
    fd,
    procPath: `/proc/${process.pid}/fd/${fd}`,
    close: () => {
      closeSync(fd);
    },
  };
}

/** The owner's single-link regular file beneath the state dir (beneath.ts rules). */
function holdStateFile(env: HelperEnv, field: string, path: string, access: "read" | "readwrite"): HeldFile {
  return hold(openRegular(named(field, path, env.roots.state), access, { uid: env.ownerUid }).fd);
}

/**
 * A banger dm snapshot device for a parser: opened by the helper, checked to
 * be this owner's own snapshot (fs/dm-device.ts), and its node given to the
 * owner (fchown of the descriptor), because the parser, no longer root,
 * reopens it through /proc/self/fd/3 and that open checks the node's
 * permissions. This grants the owner nothing: the snapshot is made of its
 * own image (read-only) and its own COW file, which it can read and write
 * directly, and its VMM is handed the same device read-write to boot it.
 * The node goes away with the device.
 */
function holdOwnSnapshot(env: HelperEnv, field: string, path: string): HeldFile {
  const { fd, stat } = openDmDevice(field, path, "readwrite", env.roots.state);
  try {
    if (stat.uid !== env.ownerUid) fchownSync(fd, env.ownerUid, stat.gid);
    return hold(fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** `image_path` of an ext4 edit: the owner's regular file in the state dir, or its own dm snapshot device. */
function holdImage(field: string, path: string, env: HelperEnv): HeldFile {
  if (path.startsWith("/dev/")) return holdOwnSnapshot(env, field, path);
  return holdStateFile(env, field, path, "readwrite");
}

/**
 * The real path a loop's sysfs backing_file must show for it to be ours.
 * Only compared against, never opened; the file may already be deleted. The
 * state dir's real path is read from its descriptor, so renaming it (or a
 * parent) cannot make another file's loop look like this VM's.
 */
function backingPath(field: string, p: string, env: HelperEnv): string | undefined {
  if (p === "") return undefined;
  return `${realPathOf(env.roots.state)}/${relativeTo(field, p, env.roots.state)}`;
}

function guestPath(field: string, p: string): string {
  try {
    return checkGuestPath(p);
  } catch (e) {
    throw bad(field, (e as Error).message);
  }
}

function perm(field: string, mode: number): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw bad(field, `${mode} is not a permission mode (0..0o7777)`);
  return mode;
}

function id(field: string, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xfffffffe) throw bad(field, `${n} is not a uid/gid`);
  return n;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const MAX_WRITE_BYTES = 64 * 1024 * 1024;

function base64(field: string, data: string): Buffer {
  if (data.length % 4 !== 0 || !BASE64_RE.test(data)) throw bad(field, "is not base64");
  return Buffer.from(data, "base64");
}

/** dm-snapshot needs the device-mapper control node and a dmsetup that can talk to the kernel driver. */
export async function dmSnapshotCapability(runner: Runner, controlPath = "/dev/mapper/control"): Promise<{ dm_snapshot: boolean; reason: string }> {
  try {
    accessSync(controlPath, constants.R_OK | constants.W_OK);
  } catch {
    return { dm_snapshot: false, reason: `${controlPath} is missing (no device-mapper in this kernel or container)` };
  }
  try {
    const out = await runText(runner, ["dmsetup", "version"], { timeoutMs: 10_000 });
    if (!/Driver version/i.test(out)) return { dm_snapshot: false, reason: "dmsetup cannot reach the device-mapper driver" };
    return { dm_snapshot: true, reason: "device-mapper and dmsetup are available" };
  } catch (e) {
    return { dm_snapshot: false, reason: `dmsetup is not usable: ${(e as Error).message}` };
  }
}

export function diskMethods(env: HelperEnv): Registration<PeerCred>[] {
  return [
    implement(privCreateDmSnapshot, async (p) => {
      v.dmName("dm_name", p.dm_name);
      const base = holdStateFile(env, "rootfs_path", p.rootfs_path, "read");
      try {
        const cow = holdStateFile(env, "cow_path", p.cow_path, "readwrite");
        try {
          return await createDmSnapshot(env.runner, base.procPath, cow.procPath, p.dm_name);
        } catch (e) {
          throw failed(`creating dm snapshot ${p.dm_name}`, e);
        } finally {
          cow.close();
        }
      } finally {
        base.close();
      }
    }),
    implement(privCleanupDmSnapshot, async (p) => {
      if (p.base_loop !== "") v.loopDevice("base_loop", p.base_loop);
      if (p.cow_loop !== "") v.loopDevice("cow_loop", p.cow_loop);
      if (p.dm_name !== "") v.dmName("dm_name", p.dm_name);
      if (p.dm_dev !== "") {
        v.dmDevicePath("dm_dev", p.dm_dev);
        if (p.dm_name !== "" && p.dm_dev !== `/dev/mapper/${p.dm_name}`) throw bad("dm_dev", `${p.dm_dev} does not belong to ${p.dm_name}`);
      }
      const expected = { base: backingPath("rootfs_path", p.rootfs_path, env), cow: backingPath("cow_path", p.cow_path, env) };
      const dmNameToRemove = p.dm_name !== "" ? p.dm_name : p.dm_dev.slice("/dev/mapper/".length);
      const handles = { base_loop: p.base_loop, cow_loop: p.cow_loop, dm_name: dmNameToRemove, dm_dev: p.dm_dev };
      try {
        await cleanupDmSnapshot(env.runner, handles, { stateDir: realPathOf(env.roots.state), expectedBacking: expected });
      } catch (e) {
        throw failed("releasing dm snapshot", e);
      }
      return {};
    }),
    implement(privFsckSnapshot, async (p) => {
      const device = holdOwnSnapshot(env, "dm_dev", p.dm_dev);
      try {
        await fsckSnapshot(env.parserRunner, device.fd);
      } catch (e) {
        throw failed(`fsck of ${p.dm_dev}`, e);
      } finally {
        device.close();
      }
      return {};
    }),
    implement(privWriteExt4Files, async (p) => {
      let total = 0;
      const files: Ext4File[] = p.files.map((f, i) => {
        const data = base64(`files[${i}].data`, f.data);
        total += data.length;
        return { path: guestPath(`files[${i}].guest_path`, f.guest_path), data, mode: perm(`files[${i}].mode`, f.mode), uid: id(`files[${i}].uid`, f.uid), gid: id(`files[${i}].gid`, f.gid) };
      });
      if (total > MAX_WRITE_BYTES) throw bad("files", `${total} bytes is more than the ${MAX_WRITE_BYTES} allowed per call`);
      const dirs: Ext4Dir[] = p.dirs.map((d, i) => ({ path: guestPath(`dirs[${i}].guest_path`, d.guest_path), mode: perm(`dirs[${i}].mode`, d.mode), uid: id(`dirs[${i}].uid`, d.uid), gid: id(`dirs[${i}].gid`, d.gid) }));
      const image = holdImage("image_path", p.image_path, env);
      try {
        await writeExt4Files(env.parserRunner, { fd: image.fd, name: p.image_path }, files, dirs);
      } catch (e) {
        throw failed(`writing files into ${p.image_path}`, e);
      } finally {
        image.close();
      }
      return {};
    }),
    implement(privStorageCaps, () => dmSnapshotCapability(env.runner)),
  ];
}
