import type { VmSpec } from "../../../src/vmm/driver.js";

export const VM_ID = "0123456789abcdef0123456789abcdef";

/** A spec with fixed paths so argv/step pinning is exact. */
export function sampleSpec(over: Partial<VmSpec> = {}): VmSpec {
  return {
    vmId: VM_ID,
    name: "brisk-otter",
    vcpus: 2,
    memoryMib: 512,
    kernelPath: "/var/lib/banger/images/default/vmlinuz",
    initrdPath: "/var/lib/banger/images/default/initrd.img",
    cmdline: "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rootfstype=ext4 rw",
    rootDisk: `/var/lib/banger/vms/${VM_ID}/root.ext4`,
    workDisk: `/var/lib/banger/vms/${VM_ID}/work.ext4`,
    tap: "tap-fc-01234567",
    mac: "06:00:ac:10:00:02",
    controlSocket: "/run/banger/vm/0123456789ab/qmp.sock",
    pidFile: "/run/banger/vm/0123456789ab/vmm.pid",
    consoleLog: `/var/lib/banger/vms/${VM_ID}/console.log`,
    vmmLog: `/var/lib/banger/vms/${VM_ID}/vmm.log`,
    accel: "tcg",
    ...over,
  };
}
