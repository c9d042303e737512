import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/*
 * VMM surface of the root helper. Method and param names follow the seed
 * (priv.launch_firecracker, priv.signal_process, ...). Shapes are loosely
 * typed (bounded strings/ints); the helper validates each field with
 * roothelper/validate.ts so a refusal names the field.
 *
 * Launch methods take the VM's fields, never an argv: the helper rebuilds
 * the argv with the same pure builders the daemon uses for display.
 * Firecracker is also CONFIGURED by the helper (the full boot sequence over
 * its API) because an unjailed firecracker runs as root and would open any
 * path the API names.
 *
 * No request names a file the helper creates: the pidfile and the sockets a
 * VMM binds live in the helper's own root-owned directory of that VM
 * (roothelper/vmm-run-dirs.ts), named by the helper from vm_id and reported
 * back as outputs.
 */

const str = z.string().max(4096);
const pid = z.number().int();

/**
 * Launch from a snapshot instead of booting: the files a save wrote (priv.vmm_save_state), the owner's,
 * beneath the state dir, opened read-only by the helper and handed to the VMM as descriptors. The
 * launch answers once the state is loaded; the guest is then PAUSED (resume it with priv.vmm_set_paused).
 */
const restore = z.object({ state_path: str, memory_path: str }).strict().optional();

export const vmFields = {
  vm_id: str,
  vcpus: z.number().int(),
  memory_mib: z.number().int(),
  kernel_path: str,
  initrd_path: str.optional(),
  cmdline: str,
  root_disk: str,
  work_disk: str,
  tap_name: str,
  mac: str,
  console_log: str,
  vmm_log: str,
  restore,
};

/** The launch fields both VMMs share, filled from a driver's VmSpec. */
export type VmLaunchFields = z.input<z.ZodObject<typeof vmFields>>;

/** Where the helper put what it made for the VMM: for the daemon's records and messages; it never has to connect. */
const launchedFiles = { pid_file: z.string(), control_socket: z.string() };

export const privLaunchQemu = defineMethod(
  "priv.launch_qemu",
  z.object({ ...vmFields, accel: z.enum(["kvm", "tcg"]) }).strict(),
  z.object({ pid, argv: z.array(z.string()), ...launchedFiles }),
);

export const privLaunchFirecracker = defineMethod(
  "priv.launch_firecracker",
  z.object({
    ...vmFields,
    metrics_path: str.optional(),
    /** A vsock device with this guest CID; its socket is the helper's (or, jailed, in the jail). */
    vsock_cid: z.number().int().optional(),
  }).strict(),
  z.object({ pid, argv: z.array(z.string()), jailed: z.boolean(), steps: z.array(z.string()), ...launchedFiles }),
);

/** Ask the guest to shut down (ctrl-alt-del via QMP or Firecracker's SendCtrlAltDel), over the control socket the helper keeps for vm_id. */
export const privVmmShutdown = defineMethod(
  "priv.vmm_shutdown",
  z.object({ pid, vm_id: str, kind: z.enum(["qemu", "firecracker"]) }).strict(),
  z.object({ sent: z.boolean() }),
);

/**
 * Freeze or thaw the guest (qemu `stop`/`cont` over QMP; Firecracker `PATCH /vm`), over the control
 * socket the helper keeps for vm_id. Answers with the state the VMM reports afterwards.
 */
export const privVmmSetPaused = defineMethod(
  "priv.vmm_set_paused",
  z.object({ pid, vm_id: str, kind: z.enum(["qemu", "firecracker"]), paused: z.boolean() }).strict(),
  z.object({ paused: z.boolean() }),
);

/**
 * Save a PAUSED guest's memory and device state into the owner's snapshot files (made empty by the
 * daemon, beneath the state dir): qemu's migration stream into state_path (memory_path is left empty);
 * Firecracker's snapshot file and memory file. The VM stays paused. `vmm_version` is what a restore
 * must match (with the kernel, machine type, vcpus and memory): the VMM binary's sha256.
 */
export const privVmmSaveState = defineMethod(
  "priv.vmm_save_state",
  z.object({ pid, vm_id: str, kind: z.enum(["qemu", "firecracker"]), state_path: str, memory_path: str, timeout_ms: z.number().int().optional() }).strict(),
  z.object({ bytes: z.number().int(), elapsed_ms: z.number(), vmm_version: z.string() }),
);

export const SIGNAL_ALLOW_LIST = ["SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGSTOP", "SIGCONT"] as const;

export const privSignalProcess = defineMethod(
  "priv.signal_process",
  z.object({ pid, vm_id: str, signal: str }).strict(),
  z.object({ sent: z.boolean() }),
);

/**
 * SIGKILL, then wait (bounded) until the process is gone. `launched_only`: only a VMM this helper
 * launched (this run, or an earlier one by its launch record), never one merely running as the
 * owner: how the daemon removes a VMM no VM claims, which may be another banger install's.
 */
export const privKillProcess = defineMethod(
  "priv.kill_process",
  z.object({ pid, vm_id: str, launched_only: z.boolean().optional() }).strict(),
  z.object({ exited: z.boolean() }),
);

/**
 * Once no VMM of vm_id runs: remove what the helper keeps for it (its run
 * directory, its jail). Paths derived by the helper from vm_id; removal by
 * descriptor, symlinks never followed. A running VMM of the VM is a conflict.
 */
export const privCleanupVmm = defineMethod(
  "priv.cleanup_vmm",
  z.object({ vm_id: str }).strict(),
  z.object({ removed: z.boolean() }),
);

/**
 * vmm = auto: boot `kernel_path` under qemu+kvm with no disks and no network
 * for a few seconds; ok when the kernel got as far as its final panic (no
 * root fs), proving KVM really runs guests here.
 */
export const privProbeQemuKvm = defineMethod(
  "priv.probe_qemu_kvm",
  z.object({ kernel_path: str, timeout_ms: z.number().int() }).strict(),
  z.object({ ok: z.boolean(), elapsed_ms: z.number(), detail: z.string() }),
);
