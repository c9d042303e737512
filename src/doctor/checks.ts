import { constants, accessSync, statSync } from "node:fs";
import type { Config } from "../config/schema.js";
import { which } from "../system/which.js";

export type CheckStatus = "ok" | "missing" | "warn";

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** The exact command or change that fixes a missing piece. */
  readonly fix?: string;
  /** Required pieces make doctor fail; optional ones only warn. */
  readonly required: boolean;
}

/** What the checks may look at; injected so tests can describe any machine. */
export interface Probe {
  which(cmd: string): string | undefined;
  /** mode bits of a path, or undefined when it does not exist. */
  mode(path: string): number | undefined;
  canReadWrite(path: string): boolean;
}

export const hostProbe: Probe = {
  which: (cmd) => which(cmd),
  mode: (path) => {
    try {
      return statSync(path).mode & 0o7777;
    } catch {
      return undefined;
    }
  },
  canReadWrite: (path) => {
    try {
      accessSync(path, constants.R_OK | constants.W_OK);
      return true;
    } catch {
      return false;
    }
  },
};

interface ToolSpec {
  readonly name: string;
  readonly commands: readonly string[];
  /** Debian/Ubuntu package that provides it. */
  readonly pkg: string;
  readonly why: string;
  readonly required: boolean;
}

const TOOLS: readonly ToolSpec[] = [
  { name: "qemu", commands: ["qemu-system-x86_64"], pkg: "qemu-system-x86", why: "boots guests when Firecracker or KVM is unavailable", required: false },
  { name: "e2fsprogs", commands: ["mkfs.ext4", "debugfs", "e2fsck", "resize2fs"], pkg: "e2fsprogs", why: "makes and edits ext4 disks without mounting them", required: true },
  { name: "setpriv", commands: ["setpriv"], pkg: "util-linux", why: "the root helper runs debugfs/e2fsck on guest disks as you, never as root, through it", required: true },
  { name: "iproute2", commands: ["ip"], pkg: "iproute2", why: "creates the bridge and taps", required: true },
  { name: "ssh", commands: ["ssh"], pkg: "openssh-client", why: "connects to guests (`vm ssh`, `vm exec`, the readiness check)", required: true },
  { name: "mmdebstrap", commands: ["mmdebstrap"], pkg: "mmdebstrap", why: "builds the default Debian image", required: true },
  { name: "uidmap", commands: ["newuidmap", "newgidmap"], pkg: "uidmap", why: "lets mmdebstrap build images without root (unshare mode)", required: false },
  { name: "busybox", commands: ["busybox"], pkg: "busybox-static", why: "builds the initrd and the tiny test image", required: true },
  { name: "dropbear", commands: ["dropbear"], pkg: "dropbear-bin", why: "the ssh server of the tiny test image", required: false },
  { name: "lz4", commands: ["lz4"], pkg: "lz4", why: "extracts the ELF vmlinux Firecracker needs from a bzImage", required: false },
  { name: "cpio", commands: ["cpio"], pkg: "cpio", why: "packs initrds", required: false },
  { name: "device-mapper", commands: ["dmsetup", "losetup"], pkg: "dmsetup", why: "O(1) dm-snapshot root disks (reflink or copy is used otherwise)", required: false },
  { name: "resolvectl", commands: ["resolvectl"], pkg: "systemd-resolved", why: "routes NAME.vm lookups on the host to banger's DNS", required: false },
];

function checkTool(t: ToolSpec, probe: Probe): CheckResult {
  const missing = t.commands.filter((c) => probe.which(c) === undefined);
  if (missing.length === 0) return { name: t.name, status: "ok", detail: t.commands.map((c) => probe.which(c) ?? c).join(", "), required: t.required };
  return {
    name: t.name,
    status: t.required ? "missing" : "warn",
    detail: `${missing.join(", ")} not found: ${t.why}`,
    fix: `sudo apt-get install -y ${t.pkg}`,
    required: t.required,
  };
}

function checkNat(probe: Probe): CheckResult {
  if (probe.which("nft") !== undefined) return { name: "nat", status: "ok", detail: "nftables (nft)", required: true };
  if (probe.which("iptables") !== undefined) return { name: "nat", status: "ok", detail: "iptables (nftables preferred)", required: true };
  return { name: "nat", status: "missing", detail: "neither nft nor iptables found: guests get no NAT to the outside", fix: "sudo apt-get install -y nftables", required: true };
}

function checkKvm(probe: Probe): CheckResult {
  const mode = probe.mode("/dev/kvm");
  if (mode === undefined) {
    return { name: "kvm", status: "warn", detail: "/dev/kvm does not exist: guests will run under qemu TCG (software emulation, slower)", fix: "enable virtualization in the firmware and `sudo modprobe kvm_intel` (or kvm_amd)", required: false };
  }
  // The root helper opens /dev/kvm for the VMM, so a 0600 root device is fine and must not be loosened.
  return { name: "kvm", status: "ok", detail: `/dev/kvm present (mode ${mode.toString(8)}); the root helper opens it for the VMM`, required: false };
}

function checkTun(probe: Probe): CheckResult {
  const mode = probe.mode("/dev/net/tun");
  if (mode === undefined) return { name: "tun", status: "missing", detail: "/dev/net/tun does not exist: no taps", fix: "sudo modprobe tun", required: true };
  return { name: "tun", status: "ok", detail: `/dev/net/tun present (mode ${mode.toString(8)})`, required: true };
}

function checkFirecracker(config: Config, probe: Probe): CheckResult[] {
  const fc = probe.which(config.vmm.firecracker_bin);
  const jailer = probe.which(config.vmm.jailer_bin);
  const wanted = config.vmm.kind === "firecracker";
  const res = (name: string, path: string | undefined, bin: string): CheckResult => path !== undefined
    ? { name, status: "ok", detail: path, required: wanted }
    : { name, status: wanted ? "missing" : "warn", detail: `${bin} not found${wanted ? "" : ": the qemu driver is used instead"}`, fix: `install ${name} from its release page and put it on PATH, or set vmm.${name === "firecracker" ? "firecracker_bin" : "jailer_bin"} in the config`, required: wanted };
  return [res("firecracker", fc, config.vmm.firecracker_bin), res("jailer", jailer, config.vmm.jailer_bin)];
}

/** Every host check, in the order doctor prints them. */
export function runChecks(config: Config, probe: Probe = hostProbe): CheckResult[] {
  const qemu = TOOLS.find((t) => t.name === "qemu");
  const results = [checkKvm(probe), checkTun(probe), ...checkFirecracker(config, probe), ...TOOLS.map((t) => checkTool(t, probe)), checkNat(probe)];
  // qemu is required when Firecracker cannot be used.
  const fcUsable = results.some((r) => r.name === "firecracker" && r.status === "ok") && results.some((r) => r.name === "kvm" && r.status === "ok");
  if (!fcUsable && qemu !== undefined) {
    return results.map((r) => (r.name === "qemu" && r.status !== "ok" ? { ...r, status: "missing", required: true, detail: `${r.detail} (required: Firecracker+KVM is not available)` } : r.name === "qemu" ? { ...r, required: true } : r));
  }
  return results;
}
