import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { startStack, type Stack } from "../../helpers/stack.js";
import { ensureTestUser } from "../../helpers/users.js";

/*
 * SIGKILL of bangerd while 8 VMs are being created, at points spread over the
 * create's steps (before the first VMM is spawned, while VMMs are being
 * launched, while guests boot). After a restart every VM must be running and
 * usable, or gone, and once they are deleted the host must be exactly as it
 * was: no tap, NAT rule, loop, VMM, runtime file or lease left.
 */

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft"));
const PARALLEL = 8;

/**
 * When to kill, spread over a create's steps: while the CLIs are still connecting and the first
 * steps run; once the first VMM has been spawned (others are cloning disks or launching); once
 * the first guest is up (others still boot).
 */
const KILL_POINTS: readonly { readonly what: string; readonly reached: (vms: readonly VmJson[]) => boolean }[] = [
  { what: "150 ms after the creates were sent", reached: () => true },
  { what: "the first VMM was spawned", reached: (vms) => vms.some((v) => v.pid !== null) },
  { what: "the first guest was up", reached: (vms) => vms.some((v) => v.state === "running") },
];

const CONFIG = `[network]
bridge = "bgkill0"
cidr = "172.16.94.0/24"
dns_listen = "127.0.0.1:0"
upstream_dns = ["172.16.94.1"]
[vmm]
kind = "qemu"
accel = "tcg"
[defaults]
memory_mib = 256
vcpus = 1
disk_gib = 1
`;

interface VmJson { name: string; state: string; ip: string | null; pid: number | null }

async function ok(stack: Stack, args: string[], timeoutMs = 600_000): Promise<string> {
  const r = await stack.cli(args, { timeoutMs });
  assert.equal(r.code, 0, `banger ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

async function list(stack: Stack): Promise<VmJson[]> {
  return JSON.parse(await ok(stack, ["vm", "list", "--json"])) as VmJson[];
}

void test(`SIGKILL of bangerd during ${PARALLEL} parallel creates (${KILL_POINTS.map((k) => k.what).join("; ")}): after a restart each VM is running and usable or gone; nothing leaks`, { skip: SKIP, timeout: 1_200_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-kill");
  cleanup.push("netns", () => ns.destroy());
  const stack = await startStack({ user, netns: ns, config: CONFIG });
  cleanup.push("stack", async () => {
    const left = await list(stack).catch(() => []);
    if (left.length > 0) await stack.cli(["vm", "rm", "--force", ...left.map((v) => v.name)]).catch(() => undefined);
    await stack.stop();
  });
  await ok(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
  // The bridge outlives VMs by design: make it before the snapshot.
  await ok(stack, ["vm", "run", "--rm", "--image", "tiny", "--", "true"]);
  const before = await snapshotHost(ns, stack);

  for (const [round, point] of KILL_POINTS.entries()) {
    const names = Array.from({ length: PARALLEL }, (_, i) => `k${round}-${i}`);
    // --no-wait: each CLI returns once its operation exists, so all 8 are in flight in the daemon.
    const sent = Promise.all(names.map((n) => stack.cli(["vm", "create", "--image", "tiny", "--name", n, "--no-wait"])));
    await sleep(150);
    for (let i = 0; !point.reached(await list(stack)); i++) {
      assert.ok(i < 3000, `never reached: ${point.what}`);
      await sleep(20);
    }
    const seen = (await list(stack)).map((v) => `${v.name}=${v.state}${v.pid !== null ? "+vmm" : ""}`).join(" ");
    await stack.killDaemon();
    await sent; // CLIs cut off by the kill fail; that is the point
    await stack.startDaemon();

    // Reconcile runs at start-up; wait until no VM is mid-operation.
    let vms = await list(stack);
    for (let i = 0; vms.some((v) => v.state !== "running" && v.state !== "stopped"); i++) {
      assert.ok(i < 600, `VMs still settling: ${JSON.stringify(vms)}`);
      await sleep(200);
      vms = await list(stack);
    }
    const states = vms.map((v) => `${v.name}=${v.state}`).join(" ");
    t.diagnostic(`killed when ${point.what} (${seen || "no VM yet"}): ${vms.length} of ${PARALLEL} VMs kept (${states || "none"})`);
    for (const v of vms) {
      assert.ok(names.includes(v.name), `unexpected VM ${v.name}`);
      if (v.state === "running") {
        assert.equal((await ok(stack, ["vm", "exec", v.name, "--", "cat", "/etc/hostname"])).trim(), v.name, `${v.name} is usable`);
      }
    }
    if (vms.length > 0) await ok(stack, ["vm", "rm", "--force", ...vms.map((v) => v.name)]);
    const after = await snapshotHost(ns, stack);
    assert.deepEqual(after, before, `after the kill when ${point.what} and the deletes, the host is as it was`);
  }
});
