import { statSync } from "node:fs";
import type { Config } from "../config/schema.js";
import type { HelperClient } from "../daemon/helper-client.js";
import { privProbeQemuKvm } from "../rpc/priv/vmm.js";
import { resolveBinary } from "./binaries.js";
import type { Accel, VmmKind } from "./driver.js";

export interface VmmChoice {
  readonly kind: VmmKind;
  readonly accel: Accel;
  /** One line for `banger doctor` / system status: why this VMM was picked. */
  readonly reason: string;
  /** Set when the choice is a degraded fallback the user should know about (qemu+tcg). */
  readonly warning?: string;
}

export interface SelectProbes {
  /** Absolute path of a binary, or undefined when it is not installed. */
  resolveBinary(name: string): string | undefined;
  /** /dev/kvm exists as a character device (the helper opens it as root). */
  kvmPresent(): boolean;
  /** A short probe boot of the tiny image with qemu+kvm; resolves true if the guest came up. */
  qemuKvmBoots(): Promise<boolean>;
}

export const hostProbes = (qemuKvmBoots: () => Promise<boolean>): SelectProbes => ({
  resolveBinary: (n) => resolveBinary(n),
  kvmPresent: () => {
    try {
      return statSync("/dev/kvm").isCharacterDevice();
    } catch {
      return false;
    }
  },
  qemuKvmBoots,
});

/**
 * vmm = auto: firecracker when its binary exists and KVM is there (firecracker
 * is KVM-only); else qemu+kvm when a short probe boot of the tiny image works
 * (some hosts expose a /dev/kvm that cannot run stock guests); else qemu+tcg,
 * which always works but is slow, with a warning. Explicit kind/accel in the
 * config are honoured, and refused when they cannot work.
 */
export async function selectVmm(vmm: Config["vmm"], probes: SelectProbes): Promise<VmmChoice> {
  const fc = probes.resolveBinary(vmm.firecracker_bin);
  const kvm = probes.kvmPresent();
  if (vmm.kind === "firecracker") {
    if (fc === undefined) throw new Error(`vmm.kind = "firecracker" but ${vmm.firecracker_bin} is not installed; install it or set vmm.kind = "auto"`);
    if (!kvm) throw new Error(`vmm.kind = "firecracker" needs /dev/kvm, which this host does not have; set vmm.kind = "qemu"`);
    return { kind: "firecracker", accel: "kvm", reason: `configured: firecracker (${fc})` };
  }
  if (vmm.kind === "auto" && fc !== undefined && kvm && vmm.accel !== "tcg") {
    return { kind: "firecracker", accel: "kvm", reason: `auto: ${fc} found and /dev/kvm present` };
  }
  if (probes.resolveBinary(vmm.qemu_bin) === undefined) {
    throw new Error(`no usable VMM: ${fc === undefined ? `${vmm.firecracker_bin} not found` : "/dev/kvm missing for firecracker"} and ${vmm.qemu_bin} not found; install qemu-system-x86`);
  }
  const why = vmm.kind === "qemu" ? "configured: qemu" : fc === undefined ? `auto: ${vmm.firecracker_bin} not found` : "auto: /dev/kvm missing";
  if (vmm.accel === "tcg") return { kind: "qemu", accel: "tcg", reason: `${why}; accel tcg configured` };
  if (vmm.accel === "kvm") {
    if (!kvm) throw new Error(`vmm.accel = "kvm" but /dev/kvm is missing; set vmm.accel = "auto" or "tcg"`);
    return { kind: "qemu", accel: "kvm", reason: `${why}; accel kvm configured` };
  }
  if (kvm && (await probes.qemuKvmBoots())) return { kind: "qemu", accel: "kvm", reason: `${why}; qemu+kvm probe boot succeeded` };
  const tcgWhy = kvm ? "qemu+kvm probe boot failed" : "/dev/kvm missing";
  return {
    kind: "qemu",
    accel: "tcg",
    reason: `${why}; ${tcgWhy}, using tcg`,
    warning: `guests run under qemu TCG (software emulation, ~10x slower) because ${tcgWhy}`,
  };
}

/** The qemu+kvm probe boot, run by the root helper (/dev/kvm is root-only) on a kernel from the state dir. */
export function helperKvmProbe(helper: HelperClient, kernelPath: string, opId: string, timeoutMs = 20_000): () => Promise<boolean> {
  return async () => (await helper.call(privProbeQemuKvm, { kernel_path: kernelPath, timeout_ms: timeoutMs }, opId, timeoutMs + 5000)).ok;
}
