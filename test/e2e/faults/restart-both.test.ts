import assert from "node:assert/strict";
import { test } from "node:test";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { queryA } from "../../helpers/dns-query.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { startStack, type Stack } from "../../helpers/stack.js";
import { ensureTestUser } from "../../helpers/users.js";

/*
 * Both banger processes die (SIGKILL, no shutdown code) with 8 VMs running and
 * come back: every guest must survive with the same VMM pid, be reachable by
 * exec, have its DNS name again, and still be stoppable and deletable by the
 * restarted helper; afterwards nothing is left.
 */

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft"));
const COUNT = 8;

const CONFIG = `[network]
bridge = "bgboth0"
cidr = "172.16.96.0/24"
dns_listen = "127.0.0.1:0"
upstream_dns = ["172.16.96.1"]
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

void test(`SIGKILL of both bangerd and bangerd-root with ${COUNT} VMs running: all survive with the same VMM pids, exec and DNS work, and they still stop and delete`, { skip: SKIP, timeout: 1_200_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-both");
  cleanup.push("netns", () => ns.destroy());
  const stack = await startStack({ user, netns: ns, config: CONFIG });
  const names = Array.from({ length: COUNT }, (_, i) => `both-${i}`);
  cleanup.push("stack", async () => {
    await stack.cli(["vm", "rm", "--force", ...names]).catch(() => undefined);
    await stack.stop();
  });
  await ok(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
  await ok(stack, ["vm", "run", "--rm", "--image", "tiny", "--", "true"]);
  const before = await snapshotHost(ns, stack);

  const created = await Promise.all(names.map((n) => stack.cli(["vm", "create", "--image", "tiny", "--name", n], { timeoutMs: 900_000 })));
  for (const [i, r] of created.entries()) assert.equal(r.code, 0, `create ${names[i] ?? "?"}: ${r.stderr}`);
  const was = JSON.parse(await ok(stack, ["vm", "list", "--json"])) as VmJson[];

  await stack.killDaemon();
  await stack.killHelper();
  await stack.startHelper();
  await stack.startDaemon();

  const now = JSON.parse(await ok(stack, ["vm", "list", "--json"])) as VmJson[];
  const dns = (JSON.parse(await ok(stack, ["system", "status", "--json"])) as { dns: { address: string } }).dns.address;
  for (const v of was) {
    const same = now.find((x) => x.name === v.name);
    assert.equal(same?.state, "running", v.name);
    assert.equal(same?.pid, v.pid, `${v.name}: the same VMM process survived both restarts`);
    assert.equal((await ok(stack, ["vm", "exec", v.name, "--", "cat", "/etc/hostname"])).trim(), v.name);
    assert.deepEqual(await queryA(ns, dns, `${v.name}.vm`), { rcode: 0, ips: [v.ip] }, `${v.name}.vm resolves again`);
  }
  // The restarted helper still knows these VMMs as its own: a graceful stop and a forced delete both work.
  await ok(stack, ["vm", "stop", names[0] ?? ""]);
  await ok(stack, ["vm", "rm", "--force", ...names]);
  assert.deepEqual(await snapshotHost(ns, stack), before, "nothing is left");
});
