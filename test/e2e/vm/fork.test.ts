import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { createMountNs } from "../../helpers/mount-ns.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { startStack, type Stack } from "../../helpers/stack.js";
import { cliOk, FC_DOUBLE } from "../../helpers/tiny-stack.js";
import { ensureTestUser } from "../../helpers/users.js";

/*
 * Issue 17's acceptance, on both drivers: a VM with a file in /root and a process appending a
 * counter is forked twice; all three run on; each fork has its own IP, MAC, hostname and NAME.vm;
 * the counter goes on in each from where it was; writes diverge; /dev/urandom differs; clocks are
 * right. Then snapshot -> rm of the source -> restore, across a daemon restart, and a create from
 * the image's warm template.
 */
const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft", "nsenter", "unshare"));

interface View { name: string; state: string; ip: string | null; mac: string | null; pid: number | null }

function config(vmm: "qemu" | "firecracker"): string {
  const vmmSection = vmm === "qemu" ? `kind = "qemu"\naccel = "tcg"` : `kind = "firecracker"\nfirecracker_bin = "${FC_DOUBLE}"\njailer = "never"`;
  // A fixed DNS port: guests reach banger's DNS through the bridge address, so NAME.vm resolves in them.
  return `[network]\nbridge = "bgfork0"\ncidr = "172.16.93.0/24"\ndns_listen = "127.0.0.1:10055"\nupstream_dns = ["127.0.0.1"]\n[vmm]\n${vmmSection}\n[defaults]\nmemory_mib = 256\nvcpus = 1\ndisk_gib = 1\n`;
}

async function sh(stack: Stack, name: string, script: string): Promise<string> {
  return (await cliOk(stack, ["vm", "exec", name, "--", "sh", "-c", script])).trim();
}

async function show(stack: Stack, name: string): Promise<View> {
  return JSON.parse(await cliOk(stack, ["vm", "show", name, "--json"])) as View;
}

/** The last counter value in the guest's log, and how many lines it has. */
async function counter(stack: Stack, name: string): Promise<number> {
  return Number(await sh(stack, name, "tail -n 1 /root/count.log"));
}

/** The guest's clock minus the host's, in seconds, bounded by the exec's own round trip. */
async function clockSkew(stack: Stack, name: string): Promise<{ low: number; high: number }> {
  const before = Date.now() / 1000;
  const guest = Number(await sh(stack, name, "date +%s"));
  const after = Date.now() / 1000;
  // `date +%s` truncates: the guest's true time is in [guest, guest + 1).
  return { low: guest - after, high: guest + 1 - before };
}

for (const vmm of ["qemu", "firecracker"] as const) {
  test(`fork, snapshot/restore and warm create (${vmm}${vmm === "firecracker" ? " via the API double" : ""}): copies continue from the instant with their own identity`, { skip: SKIP, timeout: 1_200_000 }, async (t) => {
    const user = await ensureTestUser();
    const cleanup = new CleanupStack();
    t.after(() => cleanup.run());
    const ns = await createNetNs("bgt-fork");
    cleanup.push("netns", () => ns.destroy());
    const mountNs = vmm === "firecracker" ? await createMountNs({ withKvm: true }) : undefined;
    if (mountNs !== undefined) cleanup.push("mount namespace", () => mountNs.destroy());
    const stack = await startStack({ user, netns: ns, config: config(vmm), ...(mountNs !== undefined ? { daemonMountNs: mountNs } : {}) });
    const names = ["src", "src-fork-1", "src-fork-2", "back", "warm1"];
    cleanup.push("stack", async () => {
      await stack.cli(["vm", "rm", "--force", ...names]).catch(() => undefined);
      await stack.stop();
    });
    await cliOk(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
    // The bridge outlives VMs by design: the host as a first VM leaves it is what the last must leave.
    await cliOk(stack, ["vm", "run", "--rm", "--image", "tiny", "--", "true"], 600_000);
    const before = await snapshotHost(ns, stack);

    await cliOk(stack, ["vm", "create", "--image", "tiny", "--name", "src", "--cold"], 600_000);
    await sh(stack, "src", "echo kept > /root/hello && setsid sh -c 'i=0; while true; do i=$((i+1)); echo $i >> /root/count.log; sleep 1; done' </dev/null >/dev/null 2>&1 &");
    await sleep(3000);
    const atFork = await counter(stack, "src");
    const t0 = Date.now();
    const forked = await stack.cli(["vm", "fork", "src", "--count", "2"], { timeoutMs: 600_000 });
    assert.equal(forked.code, 0, forked.stderr);
    t.diagnostic(`fork of 2 to both ssh-ready: ${Date.now() - t0} ms`);
    const vms = await Promise.all(["src", "src-fork-1", "src-fork-2"].map((n) => show(stack, n)));
    for (const v of vms) assert.equal(v.state, "running", `${v.name} runs`);
    assert.equal(new Set(vms.map((v) => v.ip)).size, 3, `distinct IPs: ${vms.map((v) => v.ip).join(", ")}`);
    assert.equal(new Set(vms.map((v) => v.mac)).size, 3, `distinct MACs: ${vms.map((v) => v.mac).join(", ")}`);

    for (const v of vms) {
      assert.equal(await sh(stack, v.name, "hostname"), v.name, "each guest took its own hostname");
      assert.equal(await sh(stack, v.name, "cat /root/hello"), "kept", "/root came along");
      // The guest's own NIC carries the MAC and IP banger gave it (ssh reached it on that IP already).
      assert.equal(await sh(stack, v.name, "cat /sys/class/net/eth0/address"), v.mac);
      const skew = await clockSkew(stack, v.name);
      t.diagnostic(`${v.name}: guest clock - host clock in [${skew.low.toFixed(2)}, ${skew.high.toFixed(2)}] s`);
      assert.ok(skew.high > -1 && skew.low < 1, `${v.name}'s clock is within 1 s of the host's: [${skew.low}, ${skew.high}]`);
    }
    // Each resolves its peers (and itself) by name through banger's DNS.
    for (const v of vms) {
      const other = vms.find((o) => o.name !== v.name) ?? v;
      const answer = await sh(stack, v.name, `nslookup ${other.name}.vm`);
      assert.ok(answer.includes(other.ip ?? "?"), `${v.name} resolves ${other.name}.vm to ${other.ip}: ${answer}`);
    }
    // The counter carried on in every copy from where it was at the fork.
    await sleep(2500);
    const counts = await Promise.all(vms.map((v) => counter(stack, v.name)));
    t.diagnostic(`counter at fork ${atFork}; now ${counts.join(", ")}`);
    for (const [i, c] of counts.entries()) assert.ok(c > atFork, `${vms[i]?.name} counts on past ${atFork}: ${c}`);
    const firstLines = await Promise.all(vms.map((v) => sh(stack, v.name, "head -n 1 /root/count.log")));
    assert.deepEqual(firstLines, ["1", "1", "1"], "each log holds the history from before the fork");
    // Writes after the fork diverge.
    for (const v of vms) await sh(stack, v.name, `echo ${v.name} > /root/who`);
    for (const v of vms) assert.equal(await sh(stack, v.name, "cat /root/who"), v.name);
    // No two copies share a random stream.
    const random = await Promise.all(vms.map((v) => sh(stack, v.name, "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'")));
    assert.equal(new Set(random).size, 3, `32 bytes of /dev/urandom differ: ${random.join(" ")}`);
    assert.match(await cliOk(stack, ["snapshot", "ls"]), /no snapshots/, "the fork's snapshot is gone");

    // Snapshot, remove the source, restore after a daemon restart.
    await cliOk(stack, ["vm", "snapshot", "src", "--name", "keep"]);
    await cliOk(stack, ["vm", "rm", "--force", "src"]);
    await stack.stopDaemon();
    await stack.startDaemon(mountNs);
    assert.match(await cliOk(stack, ["snapshot", "ls"]), /^keep\s+user\s+src\s+tiny/m, "the snapshot survived the restart");
    await cliOk(stack, ["vm", "restore", "keep", "--name", "back"], 600_000);
    assert.equal(await sh(stack, "back", "hostname"), "back");
    assert.equal(await sh(stack, "back", "cat /root/hello"), "kept");
    assert.ok((await counter(stack, "back")) >= (counts[0] ?? Infinity), "the restored VM continues the source's counter");
    // The identity the agent applied is also the one a later cold boot of the VM comes up with.
    const backIp = (await show(stack, "back")).ip;
    await cliOk(stack, ["vm", "stop", "back"], 120_000);
    await cliOk(stack, ["vm", "start", "back"], 600_000);
    assert.equal(await sh(stack, "back", "hostname"), "back", "a cold boot of a restored VM keeps its name");
    assert.equal((await show(stack, "back")).ip, backIp);

    // A warm template: create restores from it instead of booting.
    await cliOk(stack, ["image", "warm", "tiny"], 600_000);
    const w0 = Date.now();
    const created = await stack.cli(["vm", "create", "--image", "tiny", "--name", "warm1"], { timeoutMs: 600_000 });
    assert.equal(created.code, 0, created.stderr);
    t.diagnostic(`warm create to ssh-ready: ${Date.now() - w0} ms`);
    assert.equal(await sh(stack, "warm1", "hostname"), "warm1");
    assert.equal((await show(stack, "warm1")).ip, await sh(stack, "warm1", "ip -4 -o addr show dev eth0 | sed 's/.* inet \\([0-9.]*\\).*/\\1/'"));

    await cliOk(stack, ["vm", "rm", "--force", ...names.filter((n) => n !== "src")]);
    await cliOk(stack, ["snapshot", "rm", "keep", "template.tiny"]);
    assert.match(await cliOk(stack, ["snapshot", "ls"]), /no snapshots/);
    assert.deepEqual(await snapshotHost(ns, stack), before, "nothing of the VMs is left on the host");
  });
}
