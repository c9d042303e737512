import type { VmLaunchFields } from "../rpc/priv/vmm.js";
import type { VmSpec } from "./driver.js";

/** The part of a launch request that is the same for every VMM; drivers add their control socket and extras. */
export function launchFields(spec: VmSpec): VmLaunchFields {
  return {
    vm_id: spec.vmId,
    vcpus: spec.vcpus,
    memory_mib: spec.memoryMib,
    kernel_path: spec.kernelPath,
    ...(spec.initrdPath === undefined ? {} : { initrd_path: spec.initrdPath }),
    cmdline: spec.cmdline,
    root_disk: spec.rootDisk,
    work_disk: spec.workDisk,
    tap_name: spec.tap,
    mac: spec.mac,
    console_log: spec.consoleLog,
    vmm_log: spec.vmmLog,
    ...(spec.restoreFrom === undefined ? {} : { restore: { state_path: spec.restoreFrom.state, memory_path: spec.restoreFrom.memory } }),
  };
}
