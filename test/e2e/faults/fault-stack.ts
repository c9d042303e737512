import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { createNetNs, type NetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { snapshotHost, type HostSnapshot } from "../../helpers/snapshot.js";
import { startStack, type Stack, type StackOptions } from "../../helpers/stack.js";
import { ensureTestUser, type TestUser } from "../../helpers/users.js";

/*
 * What every fault scenario starts from: a real stack (helper as root, daemon
 * as the test user) in a network namespace of its own with its own bridge and
 * subnet, the tiny image built, the bridge made (it outlives VMs by design),
 * and a snapshot of the host to compare against at the end. Everything is
 * undone last-first after the test, whether it passed or not.
 */

export const FAULT_SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft"));

export interface VmJson {
  readonly name: string;
  readonly state: string;
  readonly ip: string | null;
  readonly pid: number | null;
  readonly tap: string | null;
  readonly last_error: string | null;
}

export interface FaultWorld {
  readonly user: TestUser;
  readonly ns: NetNs;
  readonly stack: Stack;
  readonly cleanup: CleanupStack;
  /** The host once the bridge exists and no VM does. */
  readonly before: HostSnapshot;
}

/**
 * `octet`: the third octet of the scenario's own 172.16.X.0/24 (and the bridge's name), so
 * scenarios never share a network. `prepare` makes what the stack needs before it starts (a
 * filesystem for its state dir), registering its undo so that it runs after the stack's.
 */
export async function startFaultWorld(t: TestContext, name: string, octet: number, prepare?: (user: TestUser, cleanup: CleanupStack) => Promise<Partial<StackOptions>>): Promise<FaultWorld> {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const opts = prepare !== undefined ? await prepare(user, cleanup) : {};
  const ns = await createNetNs(`bgt-${name}`);
  cleanup.push("netns", () => ns.destroy());
  const config = `[network]
bridge = "bg${name}0"
cidr = "172.16.${octet}.0/24"
dns_listen = "127.0.0.1:0"
upstream_dns = ["172.16.${octet}.1"]
[vmm]
kind = "qemu"
accel = "tcg"
[defaults]
memory_mib = 256
vcpus = 1
disk_gib = 1
`;
  const stack = await startStack({ user, netns: ns, config, ...opts });
  cleanup.push("stack", async () => {
    // Whatever the scenario left: a helper it killed is started again so the VMs can be deleted.
    await stack.startHelper().catch(() => undefined);
    const left = await listVms(stack).catch(() => []);
    if (left.length > 0) await stack.cli(["vm", "rm", "--force", ...left.map((v) => v.name)]).catch(() => undefined);
    await stack.stop();
  });
  await ok(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
  await ok(stack, ["vm", "run", "--rm", "--image", "tiny", "--", "true"]);
  return { user, ns, stack, cleanup, before: await snapshotHost(ns, stack) };
}

export async function ok(stack: Stack, args: readonly string[], timeoutMs = 600_000): Promise<string> {
  const r = await stack.cli(args, { timeoutMs });
  assert.equal(r.code, 0, `banger ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

export async function listVms(stack: Stack): Promise<VmJson[]> {
  return JSON.parse(await ok(stack, ["vm", "list", "--json"])) as VmJson[];
}

export async function showVm(stack: Stack, name: string): Promise<VmJson> {
  return JSON.parse(await ok(stack, ["vm", "show", name, "--json"])) as VmJson;
}
