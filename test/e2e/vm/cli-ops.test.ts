import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { startStack, type Stack } from "../../helpers/stack.js";
import { cliOk, tinyStackConfig } from "../../helpers/tiny-stack.js";
import { ensureTestUser } from "../../helpers/users.js";

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "e2fsck", "resize2fs", "setpriv", "nft", "nsenter", "unshare"));

/** Size of a guest mount in KiB, from `df -P -k MOUNT` run in the guest. */
async function guestDfKiB(stack: Stack, name: string, mount: string): Promise<number> {
  const out = await cliOk(stack, ["vm", "exec", name, "--", "df", "-P", "-k", mount]);
  const line = out.trim().split("\n").at(-1) ?? "";
  return Number(line.trim().split(/\s+/)[1]);
}

const GIB_KIB = 1024 * 1024;

test("CLI operations on a real tiny guest: Ctrl-C during create leaves nothing; stop is idempotent; --root-size and vm resize show in df; logs --tail; stats of the guest", { skip: SKIP, timeout: 900_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-cliops");
  cleanup.push("netns", () => ns.destroy());
  // Copy clones: growing a root disk needs a file clone (a dm-snapshot is as large as its image).
  const stack = await startStack({ user, netns: ns, config: `${tinyStackConfig("qemu")}[storage]\nclone_strategy = "copy"\n` });
  cleanup.push("stack", async () => {
    for (const n of ["cc", "ops"]) await stack.cli(["vm", "rm", "--force", n]).catch(() => undefined);
    await stack.stop();
  });
  await cliOk(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
  // The bridge outlives VMs by design: the host as a first VM leaves it is what the others must leave.
  await cliOk(stack, ["vm", "run", "--rm", "--image", "tiny", "--", "true"], 600_000);
  const before = await snapshotHost(ns, stack);

  // Ctrl-C while the guest boots: the create is cancelled and unwound.
  const create = stack.cliStart(["vm", "create", "--image", "tiny", "--name", "cc"], { timeoutMs: 600_000 });
  for (let i = 0; !/^ {2}ports +ok/m.test(create.output().stderr); i++) {
    if (i > 6000) assert.fail(`the create never reached wait-ssh:\n${create.output().stderr}`);
    await sleep(50);
  }
  create.signal("SIGINT");
  const cancelled = await create.result;
  t.diagnostic(cancelled.stderr);
  assert.equal(cancelled.code, 130, cancelled.stderr);
  assert.match(cancelled.stderr, /cancelling op-/);
  assert.match(cancelled.stderr, /create cc cancelled: .*cancelled/);
  const gone = await stack.cli(["vm", "show", "cc"]);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /no VM named "cc"/);
  assert.deepEqual(await snapshotHost(ns, stack), before, "no tap, NAT rule, VMM, socket, lease or VM dir is left");

  // A grown root disk is the guest's / size.
  await cliOk(stack, ["vm", "create", "--image", "tiny", "--name", "ops", "--root-size", "2"], 600_000);
  const rootKiB = await guestDfKiB(stack, "ops", "/");
  t.diagnostic(`df / with --root-size 2: ${rootKiB} KiB`);
  assert.ok(rootKiB > 1.8 * GIB_KIB && rootKiB <= 2 * GIB_KIB, `the root filesystem is about 2 GiB: ${rootKiB} KiB`);

  // Whole lines from the tail of the console.
  const tail = await cliOk(stack, ["vm", "logs", "ops", "--tail", "5"]);
  const all = await cliOk(stack, ["vm", "logs", "ops"]);
  const lines = tail.replace(/\n$/, "").split("\n");
  assert.equal(lines.length, 5, `five lines: ${JSON.stringify(tail)}`);
  assert.ok(all.endsWith(tail) && (all.length === tail.length || all[all.length - tail.length - 1] === "\n"), "the tail starts at a line start of the log");

  // The guest's own view next to the host's.
  const stats = JSON.parse(await cliOk(stack, ["vm", "stats", "ops", "--json"])) as { guest: { memory: { total_bytes: number; used_bytes: number }; disks: { mount: string; size_bytes: number }[] } | null; guest_error: string | null; rss_bytes: number };
  t.diagnostic(`guest memory ${JSON.stringify(stats.guest?.memory)}, host RSS ${stats.rss_bytes}`);
  assert.equal(stats.guest_error, null);
  assert.ok(stats.guest !== null && stats.guest.memory.total_bytes > 150 * 2 ** 20 && stats.guest.memory.total_bytes <= 256 * 2 ** 20, "the guest sees about its 256 MiB");
  assert.ok(stats.guest.memory.used_bytes > 0 && stats.guest.memory.used_bytes < stats.guest.memory.total_bytes);
  assert.deepEqual(stats.guest.disks.map((d) => d.mount).sort(), ["/", "/root"]);
  assert.match(await cliOk(stack, ["vm", "stats", "ops"]), /^guest mem: .* used of .*what the guest's kernel reports/m);

  // stop twice: exit 0 both times.
  assert.equal(await cliOk(stack, ["vm", "stop", "ops"], 180_000), "ops stopped\n");
  assert.equal(await cliOk(stack, ["vm", "stop", "ops"]), "ops was already stopped\n");

  // A stopped VM's work disk grows; the guest sees it at the next start, its files kept.
  assert.match(await cliOk(stack, ["vm", "resize", "ops", "--work", "2"], 600_000), /^ops resized: work disk 2 GiB/);
  await cliOk(stack, ["vm", "start", "ops"], 600_000);
  const workKiB = await guestDfKiB(stack, "ops", "/root");
  t.diagnostic(`df /root after resize --work 2: ${workKiB} KiB`);
  assert.ok(workKiB > 1.8 * GIB_KIB, `/root is about 2 GiB: ${workKiB} KiB`);
  assert.match(await cliOk(stack, ["vm", "exec", "ops", "--", "cat", "/root/.ssh/authorized_keys"]), /^ssh-ed25519 /, "what /root held is still there");
  assert.match(await cliOk(stack, ["vm", "start", "ops"]), /^ops is already running at /);

  await cliOk(stack, ["vm", "rm", "--force", "ops"], 180_000);
  assert.deepEqual(await snapshotHost(ns, stack), before, "nothing of the VMs is left on the host");
});
