import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { createMountNs } from "../../helpers/mount-ns.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { startStack, type Stack } from "../../helpers/stack.js";
import { cliOk, tinyStackConfig } from "../../helpers/tiny-stack.js";
import { ensureTestUser } from "../../helpers/users.js";

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft", "nsenter", "unshare"));

interface Stats { state: string; pid: number | null; cpu_percent_recent: number | null }

async function counter(stack: Stack, name: string): Promise<number> {
  return Number((await cliOk(stack, ["vm", "exec", name, "--", "cat", "/root/count"])).trim());
}

for (const vmm of ["qemu", "firecracker"] as const) {
  test(`pause and resume (${vmm}${vmm === "firecracker" ? " via the API double" : ""}): no CPU while paused, the guest carries on where it stopped, across a daemon restart; a paused VM stops cleanly`, { skip: SKIP, timeout: 600_000 }, async (t) => {
    const user = await ensureTestUser();
    const cleanup = new CleanupStack();
    t.after(() => cleanup.run());
    const ns = await createNetNs("bgt-pause");
    cleanup.push("netns", () => ns.destroy());
    const mountNs = vmm === "firecracker" ? await createMountNs({ withKvm: true }) : undefined;
    if (mountNs !== undefined) cleanup.push("mount namespace", () => mountNs.destroy());
    const stack = await startStack({ user, netns: ns, config: tinyStackConfig(vmm), ...(mountNs !== undefined ? { daemonMountNs: mountNs } : {}) });
    cleanup.push("stack", async () => {
      await stack.cli(["vm", "rm", "--force", "pz"]).catch(() => undefined);
      await stack.stop();
    });
    await cliOk(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
    // The bridge outlives VMs by design: the host as a first VM leaves it is what the last must leave.
    await cliOk(stack, ["vm", "run", "--rm", "--image", "tiny", "--", "true"], 600_000);
    const before = await snapshotHost(ns, stack);
    await cliOk(stack, ["vm", "create", "--image", "tiny", "--name", "pz"], 600_000);
    // A counter ticking once a second (guest time), and a busy loop so the CPU drop is plain to see.
    await cliOk(stack, ["vm", "exec", "pz", "--", "sh", "-c", "setsid sh -c 'i=0; while true; do i=$((i+1)); echo $i > /root/count; sleep 1; done' </dev/null >/dev/null 2>&1 & setsid sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 &"]);
    await sleep(2500);
    // CPU is the VMM process's: the double runs its qemu as a child, so only qemu's own figures say anything.
    const cpuCounts = vmm === "qemu";
    const busy = JSON.parse(await cliOk(stack, ["vm", "stats", "pz", "--json"])) as Stats;
    t.diagnostic(`running: ${busy.cpu_percent_recent ?? "?"} % CPU over the last second`);
    if (cpuCounts) assert.ok((busy.cpu_percent_recent ?? 0) > 30, `a busy guest uses CPU: ${JSON.stringify(busy)}`);

    const n1 = await counter(stack, "pz");
    const t1 = Date.now();
    assert.match(await cliOk(stack, ["vm", "pause", "pz"]), /^pz paused\n$/);
    assert.match(await cliOk(stack, ["vm", "pause", "pz"]), /already was/);
    const shown = JSON.parse(await cliOk(stack, ["vm", "show", "pz", "--json"])) as { state: string; ip: string; pid: number };
    assert.equal(shown.state, "paused");
    const exec = await stack.cli(["vm", "exec", "pz", "--", "true"]);
    assert.notEqual(exec.code, 0);
    assert.match(exec.stderr, /pz is paused; resume it with: banger vm resume pz/);
    const PAUSED_MS = 5000;
    await sleep(PAUSED_MS / 2);
    const idle = JSON.parse(await cliOk(stack, ["vm", "stats", "pz", "--json"])) as Stats;
    t.diagnostic(`paused: ${idle.cpu_percent_recent ?? "?"} % CPU over the last second`);
    assert.equal(idle.state, "paused");
    assert.ok(idle.cpu_percent_recent !== null, "a paused VM still has its VMM");
    if (cpuCounts) assert.ok(idle.cpu_percent_recent < 5, `a paused VM uses no CPU: ${JSON.stringify(idle)}`);

    // A daemon restart re-adopts it paused: same VMM, still frozen.
    await stack.stopDaemon();
    await stack.startDaemon(mountNs);
    const adopted = JSON.parse(await cliOk(stack, ["vm", "show", "pz", "--json"])) as { state: string; pid: number; ip: string };
    assert.deepEqual([adopted.state, adopted.pid, adopted.ip], ["paused", shown.pid, shown.ip]);
    const left = PAUSED_MS - (Date.now() - t1);
    if (left > 0) await sleep(left);

    assert.match(await cliOk(stack, ["vm", "resume", "pz"]), /^pz running\n$/);
    const n2 = await counter(stack, "pz");
    const wallS = (Date.now() - t1) / 1000;
    t.diagnostic(`counter ${n1} -> ${n2} over ${wallS.toFixed(1)} s of wall time, ${PAUSED_MS / 1000} s of it paused`);
    // Ticking through the pause would have added about wallS; frozen, it added only the unpaused part (plus a tick of slack).
    assert.ok(n2 >= n1 && n2 - n1 <= wallS - PAUSED_MS / 1000 + 1.5, `the counter did not run while paused: ${n1} -> ${n2} in ${wallS.toFixed(1)} s`);
    await sleep(2500);
    assert.ok((await counter(stack, "pz")) > n2, "and carries on after the resume");

    // Paused again, then stopped: thawed so it shuts down gracefully, and nothing is left.
    await cliOk(stack, ["vm", "pause", "pz"]);
    const stopped = JSON.parse(await cliOk(stack, ["vm", "stop", "pz"], 120_000).then(() => cliOk(stack, ["vm", "show", "pz", "--json"]))) as { state: string; last_error: string | null };
    assert.deepEqual([stopped.state, stopped.last_error], ["stopped", null]);
    await cliOk(stack, ["vm", "rm", "pz"]);
    assert.deepEqual(await snapshotHost(ns, stack), before, "nothing of the VM is left on the host");
  });
}
