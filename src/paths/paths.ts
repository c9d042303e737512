import { existsSync } from "node:fs";
import { join } from "node:path";
import { installLayout, installRootFromEnv, type InstallLayout } from "../install/layout.js";

/**
 * Every directory and file name banger uses comes from here, so a reader can
 * see the whole on-disk layout in one place and tests can relocate it with
 * BANGER_* environment overrides.
 */
export interface Layout {
  readonly mode: "user" | "system";
  /** Persistent state: database, images, per-VM disks. */
  readonly stateDir: string;
  /** The daemon's socket and other things of the owner's that vanish at reboot (0700, the owner's, checked by daemon/runtime-dir.ts). */
  readonly runtimeDir: string;
  readonly configFile: string;
  /** The owner daemon's socket. */
  readonly daemonSocket: string;
  /** The root helper's socket. */
  readonly helperSocket: string;
  /** Set when `banger system install` installed banger here (its install.json exists): the install's root. */
  readonly installRoot?: string;
}

// The system layout is the installed one: one set of paths for CLI, daemon, helper and doctor.
const HOST_INSTALL = installLayout();
export const SYSTEM_STATE_DIR = HOST_INSTALL.stateDir;
export const SYSTEM_RUNTIME_DIR = HOST_INSTALL.runtimeDir;
export const SYSTEM_CONFIG_FILE = HOST_INSTALL.configFile;
export const DEFAULT_HELPER_SOCKET = HOST_INSTALL.helperSocket;

type Env = Readonly<Record<string, string | undefined>>;

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.trim() !== "" ? v : undefined;
}

/**
 * HOME, or the password database's answer when HOME is unset. node:os is
 * loaded only in that case: a top-level import costs every CLI start (e.g.
 * `banger vm list`, whose budget is ~1.5x a bare node) a few ms.
 */
function homeDir(env: Env): string {
  const home = nonEmpty(env["HOME"]);
  if (home !== undefined) return home;
  // process.getBuiltinModule is Node >= 20.16; older ones need HOME (or the BANGER_* overrides).
  if (typeof process.getBuiltinModule !== "function") throw new Error("HOME is not set; set HOME, or BANGER_STATE_DIR and BANGER_CONFIG");
  return process.getBuiltinModule("node:os").homedir();
}

/**
 * Where this process's banger lives. BANGER_* variables win; then an install (install.json under
 * BANGER_INSTALL_ROOT, else /) decides, for every user, root and sudo included; then the mode's
 * defaults (per-user XDG dirs, or the system layout). One stat on the CLI's start path, no parse.
 */
export function resolveLayout(env: Env = process.env, mode?: "user" | "system", uid: number = process.getuid?.() ?? 0): Layout {
  const installed = installedLayout(env);
  const m = mode ?? (installed !== undefined || env["BANGER_MODE"] === "system" ? "system" : "user");
  const system = installed ?? HOST_INSTALL;
  // Only asked for when no override or XDG variable decides the path.
  const home = (): string => homeDir(env);
  const stateDir = nonEmpty(env["BANGER_STATE_DIR"])
    ?? (m === "system" ? system.stateDir : join(nonEmpty(env["XDG_STATE_HOME"]) ?? join(home(), ".local", "state"), "banger"));
  const runtimeDir = nonEmpty(env["BANGER_RUNTIME_DIR"])
    ?? (m === "system" ? system.runtimeDir : nonEmpty(env["XDG_RUNTIME_DIR"]) !== undefined ? join(env["XDG_RUNTIME_DIR"] ?? "", "banger") : `/tmp/banger-runtime-${uid}`);
  const configFile = nonEmpty(env["BANGER_CONFIG"])
    ?? (m === "system" ? system.configFile : join(nonEmpty(env["XDG_CONFIG_HOME"]) ?? join(home(), ".config"), "banger", "config.toml"));
  return {
    mode: m,
    stateDir,
    runtimeDir,
    configFile,
    daemonSocket: nonEmpty(env["BANGER_SOCKET"]) ?? join(runtimeDir, "bangerd.sock"),
    helperSocket: nonEmpty(env["BANGER_HELPER_SOCKET"]) ?? system.helperSocket,
    ...(installed !== undefined ? { installRoot: installed.root } : {}),
  };
}

/**
 * The CLI user's remote contexts (`banger context ...`): always the user's own config dir, whatever
 * mode or install decides the daemon's paths, since contexts are how this user reaches other hosts.
 */
export function contextsFile(env: Env = process.env): string {
  return nonEmpty(env["BANGER_CONTEXTS_FILE"]) ?? join(nonEmpty(env["XDG_CONFIG_HOME"]) ?? join(homeDir(env), ".config"), "banger", "contexts.json");
}

/** The install's layout when install.json is there. */
function installedLayout(env: Env): InstallLayout | undefined {
  const layout = installLayout(installRootFromEnv(env));
  return existsSync(layout.metadataFile) ? layout : undefined;
}

/** Files and folders inside the state dir. */
export const state = {
  database: (stateDir: string) => join(stateDir, "banger.db"),
  imagesDir: (stateDir: string) => join(stateDir, "images"),
  imageDir: (stateDir: string, imageName: string) => join(stateDir, "images", imageName),
  imageBuildDir: (stateDir: string) => join(stateDir, "images", ".build"),
  vmsDir: (stateDir: string) => join(stateDir, "vms"),
  vmDir: (stateDir: string, vmId: string) => join(stateDir, "vms", vmId),
  snapshotsDir: (stateDir: string) => join(stateDir, "snapshots"),
  snapshotDir: (stateDir: string, snapshotId: string) => join(stateDir, "snapshots", snapshotId),
  /** Scratch file the storage detector clones to learn whether this filesystem can reflink (a pid suffix is added). */
  cloneProbe: (stateDir: string) => join(stateDir, "vms", ".clone-probe"),
  sshDir: (stateDir: string) => join(stateDir, "ssh"),
  sshKey: (stateDir: string) => join(stateDir, "ssh", "id_ed25519"),
  knownHosts: (stateDir: string) => join(stateDir, "ssh", "known_hosts"),
  cacheDir: (stateDir: string) => join(stateDir, "cache"),
  /** Formatted work disks that new VMs' /root disks are cloned from (work-disk-templates.ts). */
  workDiskTemplatesDir: (stateDir: string) => join(stateDir, "cache", "work-disks"),
  /** Disk copies made ahead for the next VM create (spare-copies.ts), hard-linked into a VM's dir (one state dir, one filesystem). */
  spareCopiesDir: (stateDir: string) => join(stateDir, "cache", "spares"),
  logsDir: (stateDir: string) => join(stateDir, "logs"),
} as const;

/**
 * The jailer's tree, beneath vmm.jail_dir (its --chroot-base-dir, root's alone and outside the
 * owner's state dir, so no name on the way is one the owner can change): a per-VM directory
 * <jail dir>/<basename(exec-file)>/<id>, its chroot `root/` inside.
 */
export const jailFiles = {
  vmDir: (jailDir: string, execName: string, vmId: string) => join(jailDir, execName, vmId),
} as const;

/** Files inside one VM's directory (state dir side). */
export const vmFiles = {
  rootDisk: (vmDir: string) => join(vmDir, "root.ext4"),
  workDisk: (vmDir: string) => join(vmDir, "work.ext4"),
  cowFile: (vmDir: string) => join(vmDir, "root.cow"),
  consoleLog: (vmDir: string) => join(vmDir, "console.log"),
  vmmLog: (vmDir: string) => join(vmDir, "vmm.log"),
  metrics: (vmDir: string) => join(vmDir, "metrics.json"),
  handles: (vmDir: string) => join(vmDir, "handles.json"),
} as const;

/**
 * Files inside one snapshot's directory (`state.snapshotDir`): the VM's disks as they were at that
 * instant, the VMM's saved device and memory state, and copies of the kernel and initrd it was
 * running, so that neither deleting the VM nor rebuilding its image breaks the snapshot.
 */
export const snapshotFiles = {
  rootDisk: (dir: string) => join(dir, "root.ext4"),
  workDisk: (dir: string) => join(dir, "work.ext4"),
  /** qemu's migration stream, or Firecracker's snapshot (device state) file. */
  vmState: (dir: string) => join(dir, "vmstate"),
  /** Firecracker's guest memory file; empty for qemu, whose stream holds the memory. */
  memory: (dir: string) => join(dir, "memory"),
  kernel: (dir: string) => join(dir, "vmlinuz"),
  vmlinux: (dir: string) => join(dir, "vmlinux"),
  initrd: (dir: string) => join(dir, "initrd.img"),
} as const;

/** Files inside one image's directory (`state.imageDir`); see the guest contract. */
export const imageFiles = {
  /** bzImage, booted by qemu. */
  kernel: (imageDir: string) => join(imageDir, "vmlinuz"),
  /** Uncompressed ELF extracted from the bzImage, booted by Firecracker. */
  vmlinux: (imageDir: string) => join(imageDir, "vmlinux"),
  initrd: (imageDir: string) => join(imageDir, "initrd.img"),
  rootfs: (imageDir: string) => join(imageDir, "rootfs.ext4"),
} as const;

/**
 * The root helper's own per-VM directories, <helper dir>/vm/<vm id>/, next to
 * its socket (the helper dir is root's; see roothelper/vmm-run-dirs.ts): what
 * root creates for a VMM lives there, where the owner can write nothing. The
 * helper picks these names from the VM id; the daemon only reads the pidfile
 * (the dirs are 0711, the pidfile 0644) and shows the socket paths.
 */
export const helperVmFiles = {
  /** The name of vmsDir inside the helper's dir (made there by descriptor). */
  vmsLeaf: "vm",
  vmsDir: (helperDir: string) => join(helperDir, "vm"),
  vmDir: (helperDir: string, vmId: string) => join(helperDir, "vm", vmId),
  pidFile: (helperDir: string, vmId: string) => join(helperDir, "vm", vmId, HELPER_VM_LEAVES.pidFile),
  qmpSocket: (helperDir: string, vmId: string) => join(helperDir, "vm", vmId, HELPER_VM_LEAVES.qmpSocket),
  apiSocket: (helperDir: string, vmId: string) => join(helperDir, "vm", vmId, HELPER_VM_LEAVES.apiSocket),
  vsockSocket: (helperDir: string, vmId: string) => join(helperDir, "vm", vmId, HELPER_VM_LEAVES.vsockSocket),
} as const;

/** The entries of one helper VM directory, by name (the helper creates them beneath its descriptor of the directory). */
export const HELPER_VM_LEAVES = {
  pidFile: "vmm.pid",
  /** pid and start time of the VMM the helper launched, for a restarted helper (vmm-processes.ts); root-only. */
  launchRecord: "launch",
  qmpSocket: "qmp.sock",
  apiSocket: "api.sock",
  vsockSocket: "vsock.sock",
  /** The guest agent's FIFOs (qemu `-chardev pipe,path=<dir>/agent`): host to guest, guest to host. */
  agentIn: "agent.in",
  agentOut: "agent.out",
} as const;
