import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import type { Stack } from "./stack.js";

/** The Firecracker API double (test/fc-double), which boots the guest with qemu underneath. */
export const FC_DOUBLE = join(resolve(import.meta.dirname, ".."), "fc-double", "firecracker-double.js");

/** A daemon config for e2e stacks of tiny VMs under TCG, with qemu or the Firecracker double. */
export function tinyStackConfig(vmm: "qemu" | "firecracker", memoryMib = 256): string {
  const vmmSection = vmm === "qemu" ? `kind = "qemu"\naccel = "tcg"` : `kind = "firecracker"\nfirecracker_bin = "${FC_DOUBLE}"\njailer = "never"`;
  return `[network]
bridge = "bgvm0"
cidr = "172.16.90.0/24"
dns_listen = "127.0.0.1:0"
upstream_dns = ["172.16.90.1"]
[vmm]
${vmmSection}
[defaults]
memory_mib = ${memoryMib}
vcpus = 1
disk_gib = 1
`;
}

/** `banger ARGS` must succeed; its stdout. */
export async function cliOk(stack: Stack, args: string[], timeoutMs = 300_000): Promise<string> {
  const r = await stack.cli(args, { timeoutMs });
  assert.equal(r.code, 0, `banger ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}
