import type { ApiStep, VmSpec } from "../driver.js";

/**
 * Paths as FIRECRACKER sees them: host paths when it runs directly, paths
 * inside the chroot when it runs under the jailer.
 */
export interface FcPaths {
  readonly kernel: string;
  readonly initrd?: string | undefined;
  readonly rootDisk: string;
  readonly workDisk: string;
  readonly logPath: string;
  readonly metricsPath?: string | undefined;
  readonly vsockUds?: string | undefined;
}

/** Host-path view of a spec, for firecracker run without the jailer. */
export function directPaths(spec: VmSpec): FcPaths {
  return {
    kernel: spec.kernelPath,
    initrd: spec.initrdPath,
    rootDisk: spec.rootDisk,
    workDisk: spec.workDisk,
    logPath: spec.vmmLog,
    metricsPath: spec.metricsPath,
    vsockUds: spec.vsock?.udsPath,
  };
}

/**
 * The boot as a named list of API calls, in the order the Go SDK uses:
 * logger, metrics, machine-config, boot-source, drives (root first, so it is
 * /dev/vda and work is /dev/vdb), network interface, vsock, InstanceStart.
 * Resource ids avoid hyphens (Firecracker accepts only [A-Za-z0-9_]).
 */
export function buildBootSteps(spec: VmSpec, paths: FcPaths): readonly ApiStep[] {
  const steps = observabilitySteps(paths);
  const bootSource: Record<string, unknown> = { kernel_image_path: paths.kernel, boot_args: spec.cmdline };
  if (paths.initrd !== undefined) bootSource["initrd_path"] = paths.initrd;
  steps.push(
    { name: "machine-config", method: "PUT", path: "/machine-config", body: { vcpu_count: spec.vcpus, mem_size_mib: spec.memoryMib, smt: false } },
    { name: "boot-source", method: "PUT", path: "/boot-source", body: bootSource },
    { name: "drive:rootfs", method: "PUT", path: "/drives/rootfs", body: { drive_id: "rootfs", path_on_host: paths.rootDisk, is_root_device: true, is_read_only: false } },
    { name: "drive:work", method: "PUT", path: "/drives/work", body: { drive_id: "work", path_on_host: paths.workDisk, is_root_device: false, is_read_only: false } },
    { name: "network-interface:net0", method: "PUT", path: "/network-interfaces/net0", body: { iface_id: "net0", host_dev_name: spec.tap, guest_mac: spec.mac } },
  );
  if (spec.vsock !== undefined && paths.vsockUds !== undefined) {
    steps.push({ name: "vsock", method: "PUT", path: "/vsock", body: { guest_cid: spec.vsock.cid, uds_path: paths.vsockUds } });
  }
  steps.push({ name: "InstanceStart", method: "PUT", path: "/actions", body: { action_type: "InstanceStart" } });
  return Object.freeze(steps);
}

/** Logger and metrics: the only resources Firecracker allows before a snapshot load, as before a boot. */
function observabilitySteps(paths: FcPaths): ApiStep[] {
  const steps: ApiStep[] = [
    { name: "logger", method: "PUT", path: "/logger", body: { log_path: paths.logPath, level: "Info", show_level: true, show_log_origin: false } },
  ];
  if (paths.metricsPath !== undefined) steps.push({ name: "metrics", method: "PUT", path: "/metrics", body: { metrics_path: paths.metricsPath } });
  return steps;
}

/** A snapshot's files inside a jail's root (what a jailed Firecracker is told, and what a jailed save makes). */
export const FC_SNAPSHOT_NAMES = { state: "snapshot.vmstate", memory: "snapshot.mem" } as const;

/**
 * A restore instead of a boot: logger/metrics, then `PUT /snapshot/load`, leaving the guest paused.
 * Everything else comes from the snapshot, which names the kernel and drives by the paths they had at
 * boot: /proc/self/fd numbers (unjailed; the helper hands the NEW disks at the same numbers, so a
 * restore must name the same optional files, initrd, metrics and vsock, as the boot) or in-jail names
 * (the new disks are linked at the same names). Only the tap is overridden: the MAC stays the saved
 * one until the guest is given its identity.
 */
export function buildRestoreSteps(spec: VmSpec, paths: FcPaths, snapshot: { readonly state: string; readonly memory: string }): readonly ApiStep[] {
  const steps = observabilitySteps(paths);
  steps.push({
    name: "snapshot-load",
    method: "PUT",
    path: "/snapshot/load",
    body: {
      snapshot_path: snapshot.state,
      mem_backend: { backend_type: "File", backend_path: snapshot.memory },
      resume_vm: false,
      network_overrides: [{ iface_id: "net0", host_dev_name: spec.tap }],
    },
  });
  return Object.freeze(steps);
}
