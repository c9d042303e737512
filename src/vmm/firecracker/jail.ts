import { closeSync } from "node:fs";
import { chmod, lchown, link, lstat, mkdir, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { state } from "../../paths/paths.js";
import type { Runner } from "../../system/runner.js";
import type { VmSpec } from "../driver.js";
import { openVerified } from "../open-verified.js";
import type { FcPaths } from "./boot-steps.js";

/**
 * The seeds' jailer design: a per-VM chroot under the state dir (same
 * filesystem as images and disks, so kernel/initrd/disk files are HARD-LINKED,
 * not copied), block devices (dm snapshots) recreated with mknod, everything
 * owned by the owner uid the jailer drops to. The jailer itself copies the
 * firecracker binary and creates /dev/kvm and /dev/net/tun inside.
 */
export interface JailLayout {
  /** <stateDir>/jail/<exec>/<vmId>: what cleanup removes. */
  readonly vmDir: string;
  /** The chroot: <vmDir>/root. */
  readonly root: string;
  /** Host path of the API socket firecracker binds at /api.sock inside the jail. */
  readonly apiSocketHost: string;
  readonly apiSocketInJail: string;
  readonly chrootBaseDir: string;
}

export function jailLayout(stateDir: string, firecrackerBin: string, vmId: string): JailLayout {
  const vmDir = state.jailerVmDir(stateDir, basename(firecrackerBin), vmId);
  const root = join(vmDir, "root");
  // Short in-jail names keep <root>/api.sock under the 108-byte sun_path limit.
  return { vmDir, root, apiSocketHost: join(root, "api.sock"), apiSocketInJail: "/api.sock", chrootBaseDir: state.jailerBase(stateDir) };
}

export type JailOp =
  | { readonly op: "mkdir"; readonly path: string }
  | { readonly op: "link"; readonly from: string; readonly to: string }
  | { readonly op: "mknod"; readonly from: string; readonly to: string };

export interface JailPlan {
  readonly ops: readonly JailOp[];
  /** What firecracker is told in the API (paths resolved from the chroot's /). */
  readonly paths: FcPaths;
}

/** Pure: which files go where inside the jail. Block devices get mknod, files a hard link. */
export function planJail(spec: VmSpec, layout: JailLayout, isBlockDevice: (p: string) => boolean): JailPlan {
  const ops: JailOp[] = [{ op: "mkdir", path: layout.root }];
  const put = (from: string, name: string): string => {
    ops.push(isBlockDevice(from) ? { op: "mknod", from, to: join(layout.root, name) } : { op: "link", from, to: join(layout.root, name) });
    return `/${name}`;
  };
  const kernel = put(spec.kernelPath, "vmlinux");
  const initrd = spec.initrdPath === undefined ? undefined : put(spec.initrdPath, "initrd.img");
  const rootDisk = put(spec.rootDisk, "rootfs");
  const workDisk = put(spec.workDisk, "work");
  return {
    ops,
    paths: {
      kernel,
      initrd,
      rootDisk,
      workDisk,
      logPath: "/firecracker.log",
      metricsPath: spec.metricsPath === undefined ? undefined : "/metrics.json",
      vsockUds: spec.vsock === undefined ? undefined : "/v.sock",
    },
  };
}

/** Carry out a plan: the chroot dir and device nodes are chowned to the owner; hard links are not (see below). */
export async function applyJail(plan: JailPlan, uid: number, gid: number, runner: Runner): Promise<void> {
  for (const op of plan.ops) {
    if (op.op === "mkdir") {
      // Parents (<base>/<exec>/<id>) stay root's but traversable (0711) so the owner's daemon can reach
      // sockets inside the chroot; the chroot itself is the owner's, 0700 (the jailer expects that too).
      for (const dir of [dirname(dirname(dirname(op.path))), dirname(dirname(op.path)), dirname(op.path)]) {
        await mkdir(dir, { recursive: true });
        const st = await lstat(dir);
        if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
        if (st.uid === 0) await chmod(dir, 0o711);
      }
      await mkdir(op.path, { mode: 0o700 });
      await lchown(op.path, uid, gid);
      continue;
    }
    if (op.op === "link") {
      // Pin the inode we validated (no symlink leaf, no swapped directory), link, then check the
      // link names that same inode. NO chown: a hard link shares the inode, so chowning it would
      // hand the owner the original file. Disks are the owner's already; kernels need only read.
      const { fd, stat: want } = openVerified("jail source", op.from, "read");
      try {
        await link(op.from, op.to);
        const got = await lstat(op.to);
        if (got.ino !== want.ino || got.dev !== want.dev) {
          await rm(op.to, { force: true });
          throw new Error(`${op.from} changed while being linked into the jail; refusing`);
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EXDEV") throw new Error(`cannot hard-link ${op.from} into the jail: it is on another filesystem than the state dir's jail/ folder`, { cause: e });
        throw e;
      } finally {
        closeSync(fd);
      }
    } else {
      const st = await stat(op.from);
      if (!st.isBlockDevice()) throw new Error(`${op.from} is not a block device`);
      const major = Math.floor(st.rdev / 256) & 0xfff;
      const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
      await runner.run(["mknod", "-m", "0600", op.to, "b", String(major), String(minor)]);
      // A fresh node of our own: safe to hand to the owner.
      await lchown(op.to, uid, gid);
      await chmod(op.to, 0o600);
    }
  }
}

/**
 * Remove a VM's jail directory. fs.rm never follows symlinks (it unlinks
 * them), and the caller has already checked every path component is not a
 * symlink. Hard-linked files only lose one link; the originals stay.
 */
export async function removeJail(vmDir: string): Promise<boolean> {
  try {
    await lstat(vmDir);
  } catch {
    return false;
  }
  await rm(vmDir, { recursive: true, force: true });
  return true;
}
