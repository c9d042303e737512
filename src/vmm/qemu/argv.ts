import { dirname } from "node:path";
import type { VmSpec } from "../driver.js";
import { hasControlChars } from "../../model/text.js";
import { AGENT_PORT_NAME } from "../agent-line.js";

/**
 * A full host disk shows the guest a write error (its filesystem reports it, the writer sees EIO)
 * instead of qemu's default for virtio, which pauses the whole VM on ENOSPC: a paused guest looks
 * running to banger, answers nothing and says nothing about why.
 */
const IO_ERRORS = "werror=report,rerror=report";

/**
 * A restoring qemu reads the saved migration stream from this descriptor (`-incoming fd:3`): the root
 * helper hands the state file to it first, so the number is fixed and the argv can be shown before.
 */
export const QEMU_STATE_FD = 3;

/** Who qemu becomes after it has opened /dev/kvm, /dev/net/tun, disks and sockets as root. */
export interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

/**
 * qemu's option syntax uses "," as a separator ("file=a,if=none"); a value
 * containing a comma could smuggle extra options, so refuse it outright rather
 * than relying on ",," escaping being applied everywhere.
 */
function optValue(field: string, value: string): string {
  if (value === "" || value.includes(",") || hasControlChars(value)) throw new Error(`${field}: ${JSON.stringify(value)} cannot be passed to qemu (empty, comma or control character)`);
  return value;
}

/**
 * The qemu `-M microvm` argv for one guest. Pure and deterministic, so the
 * root helper and unit tests see exactly what will run.
 *
 * - ACPI stays ON (microvm's default): Debian's cloud kernel has virtio_mmio
 *   as a module WITHOUT CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so it finds the
 *   virtio-mmio devices only through microvm's ACPI tables; with acpi=off the
 *   root disk never appears (measured: initrd times out waiting for /dev/vda).
 * - graceful stop is ctrl-alt-del through the i8042 keyboard controller
 *   (`-device i8042`, not on microvm by default): init reboots, `reboot=k`
 *   resets through the i8042 and `-no-reboot` turns the reset into qemu exit.
 * - drives are `if=none` + virtio-blk-device in root-then-work order, so the
 *   guest sees /dev/vda (root) and /dev/vdb (work).
 * - `-runas uid:gid` (qemu >= 7.2 accepts numeric ids) drops privileges after
 *   device setup: the VMM never runs the guest as root, unless root owns the
 *   install (see runAsArgs).
 * - virtio-net has `guest_announce=off` on EVERY launch (device lists must be
 *   identical for a snapshot to load): a restored fork must never send
 *   gratuitous ARPs for the source's MAC/IP, which would steal its traffic.
 * - restoring (spec.restoreFrom): `-incoming fd:3 -S`, the state from the
 *   descriptor the helper hands first, loaded and left paused; announce-rounds=0
 *   keeps qemu itself from announcing the saved MAC after the load.
 */
export function buildQemuArgv(qemuBin: string, spec: VmSpec, runAs: RunAs): string[] {
  if (hasControlChars(spec.cmdline)) throw new Error("cmdline: contains a control character");
  if (spec.accel !== "kvm" && spec.accel !== "tcg") throw new Error(`accel must be kvm or tcg, not ${String(spec.accel)}`);
  const argv = [
    qemuBin,
    "-name", `banger-${optValue("vmId", spec.vmId)}`,
    "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on",
    "-accel", spec.accel,
    "-cpu", spec.accel === "kvm" ? "host" : "max",
    "-smp", String(spec.vcpus),
    "-m", `${spec.memoryMib}M`,
    "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
    "-device", "i8042",
    "-kernel", optValue("kernelPath", spec.kernelPath),
  ];
  if (spec.initrdPath !== undefined) argv.push("-initrd", optValue("initrdPath", spec.initrdPath));
  argv.push(
    "-append", spec.cmdline,
    "-drive", `id=root,file=${optValue("rootDisk", spec.rootDisk)},format=raw,if=none,cache=writeback,${IO_ERRORS}`,
    "-device", "virtio-blk-device,drive=root",
    "-drive", `id=work,file=${optValue("workDisk", spec.workDisk)},format=raw,if=none,cache=writeback,${IO_ERRORS}`,
    "-device", "virtio-blk-device,drive=work",
    "-netdev", `tap,id=n0,ifname=${optValue("tap", spec.tap)},script=no,downscript=no`,
    "-device", `virtio-net-device,netdev=n0,mac=${optValue("mac", spec.mac)},guest_announce=off`,
    "-chardev", `file,id=con0,path=${optValue("consoleLog", spec.consoleLog)},append=on`,
    "-serial", "chardev:con0",
    ...agentChannelArgs(spec.controlSocket),
    "-qmp", `unix:${optValue("controlSocket", spec.controlSocket)},server=on,wait=off`,
    ...runAsArgs(runAs),
  );
  if (spec.restoreFrom !== undefined) argv.push("-incoming", `fd:${QEMU_STATE_FD}`, "-S", "-global", "migration.announce-rounds=0");
  return argv;
}

/**
 * The guest agent's channel, on every launch (a snapshot restores only into an identical device
 * list): a virtio-serial port named org.banger.agent on a `pipe` chardev, i.e. the FIFOs
 * `agent.in` (host to guest) and `agent.out` the helper makes beside the control socket in the
 * VM's run directory. qemu opens both read-write, so the guest never sees the host hang up and its
 * read blocks until a line comes (a `socket` chardev with no client reads EOF at once: a spin).
 */
export function agentChannelArgs(controlSocket: string): string[] {
  return [
    "-device", "virtio-serial-device",
    "-chardev", `pipe,id=agent,path=${optValue("agentPipe", `${dirname(controlSocket)}/agent`)}`,
    "-device", `virtserialport,chardev=agent,name=${AGENT_PORT_NAME}`,
  ];
}

/**
 * `-runas` for an owner other than root. For root there is nothing to drop to, and qemu would
 * refuse to run: after dropping it checks that setuid(0) now fails, and exits with "Dropping
 * privileges failed" when it does not.
 */
function runAsArgs(runAs: RunAs): string[] {
  return runAs.uid === 0 ? [] : ["-runas", `${runAs.uid}:${runAs.gid}`];
}

/**
 * A few-second qemu+kvm boot with no disks, network or init: the kernel runs
 * to "VFS: Unable to mount root fs" and panics; panic=-1 reboots at once and
 * -no-reboot turns that into a clean exit. Reaching the panic proves KVM
 * executes a stock guest kernel on this host.
 */
export function buildKvmProbeArgv(qemuBin: string, kernelPath: string, runAs: RunAs): string[] {
  return [
    qemuBin,
    "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on",
    "-accel", "kvm", "-cpu", "host", "-smp", "1", "-m", "128M",
    "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
    "-kernel", optValue("kernelPath", kernelPath),
    "-append", "console=ttyS0 panic=-1 reboot=k root=/dev/banger-probe-none",
    "-serial", "stdio",
    ...runAsArgs(runAs),
  ];
}

export function kvmProbeVerdict(consoleText: string, elapsedMs: number): { ok: boolean; elapsed_ms: number; detail: string } {
  const ok = consoleText.includes("Kernel panic - not syncing");
  const last = consoleText.trim().split("\n").filter((l) => l.trim() !== "").slice(-1)[0] ?? "(no console output)";
  return { ok, elapsed_ms: elapsedMs, detail: ok ? "guest kernel reached its final panic under KVM" : `guest kernel did not boot under KVM; last console line: ${last.slice(0, 200)}` };
}
