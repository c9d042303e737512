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
 * SIGKILL of bangerd-root while 8 VMs are being created, and while it is down
 * a stop is asked for. Nothing may hang: requests that needed the helper fail
 * at once with a typed error. Once the helper is back, every VM converges by
 * itself to running and usable, or gone, and after the deletes nothing is left.
 */

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft"));
const PARALLEL = 8;

const CONFIG = `[network]
bridge = "bghelp0"
cidr = "172.16.97.0/24"
dns_listen = "127.0.0.1:0"
upstream_dns = ["172.16.97.1"]
[vmm]
kind = "qemu"
accel = "tcg"
[defaults]
memory_mib = 256
vcpus = 1
disk_gib = 1
`;

interface VmJson { name: string; state: string; pid: number | null }

async function ok(stack: Stack, args: string[], timeoutMs = 600_000): Promise<string> {
  const r = await stack.cli(args, { timeoutMs });
  assert.equal(r.code, 0, `banger ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

const list = async (stack: Stack): Promise<VmJson[]> => JSON.parse(await ok(stack, ["vm", "list", "--json"])) as VmJson[];

void test(`SIGKILL of bangerd-root during ${PARALLEL} parallel creates: typed errors, no hang, and every VM converges to running or gone once it is back`, { skip: SKIP, timeout: 1_200_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-help");
  cleanup.push("netns", () => ns.destroy());
  const stack = await startStack({ user, netns: ns, config: CONFIG });
  const names = Array.from({ length: PARALLEL }, (_, i) => `h-${i}`);
  cleanup.push("stack", async () => {
    await stack.startHelper().catch(() => undefined);
    await stack.cli(["vm", "rm", "--force", ...names, "h-stop"]).catch(() => undefined);
    await stack.stop();
  });
  await ok(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
  await ok(stack, ["vm", "run", "--rm", "--image", "tiny", "--", "true"]);
  const before = await snapshotHost(ns, stack);
  await ok(stack, ["vm", "create", "--image", "tiny", "--name", "h-stop"]);

  const sent = Promise.all(names.map((n) => stack.cli(["vm", "create", "--image", "tiny", "--name", n, "--no-wait"])));
  for (let i = 0; !(await list(stack)).some((v) => v.name !== "h-stop" && v.pid !== null); i++) {
    assert.ok(i < 3000, "no VMM was ever spawned");
    await sleep(20);
  }
  await stack.killHelper();
  await sent;

  // While the helper is down, a request that needs it fails at once, typed, and names the helper.
  const t0 = Date.now();
  const stop = await stack.cli(["vm", "stop", "h-stop"], { timeoutMs: 60_000 });
  assert.notEqual(stop.code, 0);
  assert.match(stop.stderr, /helper\.sock|bangerd-root/, stop.stderr);
  assert.ok(Date.now() - t0 < 15_000, `vm stop took ${Date.now() - t0} ms with the helper down`);

  await stack.startHelper();
  let vms = await list(stack);
  for (let i = 0; vms.some((v) => v.state !== "running" && v.state !== "stopped"); i++) {
    assert.ok(i < 900, `VMs never converged: ${JSON.stringify(vms)}`);
    await sleep(200);
    vms = await list(stack);
  }
  t.diagnostic(`after the helper was back: ${vms.map((v) => `${v.name}=${v.state}`).join(" ")}`);
  for (const v of vms.filter((x) => x.state === "running")) {
    assert.equal((await ok(stack, ["vm", "exec", v.name, "--", "cat", "/etc/hostname"])).trim(), v.name, `${v.name} is usable`);
  }
  await ok(stack, ["vm", "rm", "--force", ...vms.map((v) => v.name)]);
  assert.deepEqual(await snapshotHost(ns, stack), before, "nothing is left");
});
