import { basename, join } from "node:path";
import { jailFiles } from "../../paths/paths.js";
import type { VmSpec } from "../driver.js";
import type { FcPaths } from "./boot-steps.js";

/**
 * The seeds' jailer design: a per-VM chroot whose kernel/initrd/disk files
 * are HARD-LINKED, not copied (so the jail dir must be on the state dir's
 * filesystem), block devices (dm snapshots) recreated with mknod, the chroot
 * owned by the owner uid the jailer drops to. Unlike the seeds, the jail dir
 * is not inside the state dir: the jailer resolves it by name as root, so
 * every component of it must be root's (vmm.jail_dir, checked by the helper). The jailer itself copies the
 * firecracker binary and creates /dev/kvm and /dev/net/tun inside. This is
 * the plan only; the root helper stages it by descriptor
 * (roothelper/launch/jail-stage.ts).
 */
export interface JailLayout {
  /** <jailDir>/<exec>/<vmId>: what cleanup removes. */
  readonly vmDir: string;
  /** The chroot: <vmDir>/root. */
  readonly root: string;
  /** Host path of the API socket firecracker binds at /api.sock inside the jail. */
  readonly apiSocketHost: string;
  readonly apiSocketInJail: string;
  readonly chrootBaseDir: string;
}

export function jailLayout(jailDir: string, firecrackerBin: string, vmId: string): JailLayout {
  const vmDir = jailFiles.vmDir(jailDir, basename(firecrackerBin), vmId);
  const root = join(vmDir, "root");
  // Short in-jail names keep <root>/api.sock under the 108-byte sun_path limit.
  return { vmDir, root, apiSocketHost: join(root, "api.sock"), apiSocketInJail: "/api.sock", chrootBaseDir: jailDir };
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
