import assert from "node:assert/strict";
import { test } from "node:test";
import type { CliContext, InterruptHook } from "../../../src/cli/command.js";
import { imagePruneCommand } from "../../../src/cli/commands/image/prune.js";
import { operationCancelCommand } from "../../../src/cli/commands/operation/cancel.js";
import { operationShowCommand } from "../../../src/cli/commands/operation/show.js";
import { operationWaitCommand } from "../../../src/cli/commands/operation/wait.js";
import { vmCreateCommand } from "../../../src/cli/commands/vm/create.js";
import { vmPruneCommand } from "../../../src/cli/commands/vm/prune.js";
import { vmResizeCommand } from "../../../src/cli/commands/vm/resize.js";
import { makeVmRunCommand } from "../../../src/cli/commands/vm/run.js";
import { vmStartCommand } from "../../../src/cli/commands/vm/start.js";
import { vmStatsCommand } from "../../../src/cli/commands/vm/stats.js";
import { vmDeleteCommand, vmStopCommand } from "../../../src/cli/commands/vm/stop.js";
import { InterruptedError } from "../../../src/cli/interrupt.js";
import { HEARTBEAT_MS, ProgressRenderer } from "../../../src/cli/progress.js";
import { runSteps, StepFailedError } from "../../../src/daemon/vm/steps.js";
import type { OperationView } from "../../../src/rpc/daemon/operation.js";
import { cli } from "./fake-cli.js";
import { makeHarness, type Harness } from "./fakes.js";

/** An interrupt hook the test fires by hand, as the real one fires on SIGINT. */
function fakeInterrupts(): { hook: InterruptHook; fire: () => void; installed: () => number } {
  const handlers = new Set<() => void>();
  return {
    hook: (h) => { handlers.add(h); return () => { handlers.delete(h); }; },
    fire: () => { for (const h of [...handlers]) h(); },
    installed: () => handlers.size,
  };
}

async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function nothingLeft(h: Harness): void {
  assert.deepEqual([...h.host.live], [], "no lease, tap, NAT, disk, VMM or DNS record is left");
  assert.deepEqual(h.vms.list().map((v) => v.name), [], "no VM record is left");
}

void test("Ctrl-C during vm create cancels it: the daemon unwinds every step, the CLI exits 130", async (t) => {
  const h = makeHarness({ sshReadyTimeoutMs: 60_000 });
  t.after(() => { h.close(); });
  h.host.sshReady = false;
  const ints = fakeInterrupts();
  const c = cli(h, { interrupts: ints.hook });
  const run = c.run(vmCreateCommand, ["--name", "gamma"]).catch((e: unknown) => e);
  await until("the create to wait for ssh", () => h.host.calls.includes("ssh.waitReady"));
  ints.fire();
  const outcome = await run;
  assert.ok(outcome instanceof InterruptedError, "the command ends as interrupted (main maps it to exit 130)");
  await h.service.idle();
  nothingLeft(h);
  assert.match(c.err, /cancelling op-/);
  assert.match(c.err, /create gamma cancelled: .*cancelled/);
  assert.match(c.err, /^ {2}lease +undone$/m, "the undone steps are drawn");
  const op = h.ops.get(c.ctx.opId);
  assert.equal(op?.state, "failed");
  assert.match(op.error ?? "", /cancelled/);
  assert.equal(ints.installed(), 0, "the interrupt handler is removed");
});

void test("Ctrl-C with --detach leaves the create running and says how to follow it", async (t) => {
  const h = makeHarness({ sshReadyTimeoutMs: 60_000 });
  t.after(() => { h.close(); });
  h.host.sshReady = false;
  const ints = fakeInterrupts();
  const c = cli(h, { interrupts: ints.hook });
  const run = c.run(vmCreateCommand, ["--name", "delta", "--detach"]).catch((e: unknown) => e);
  await until("the create to wait for ssh", () => h.host.calls.includes("ssh.waitReady"));
  ints.fire();
  assert.ok((await run) instanceof InterruptedError);
  assert.match(c.err, new RegExp(`detached: ${c.ctx.opId} keeps running; follow it with: banger operation wait ${c.ctx.opId}`));
  assert.equal(h.ops.get(c.ctx.opId)?.state, "running", "the create goes on without the CLI");
  assert.equal(h.vms.getByName("delta")?.state, "creating");
  // Someone else cancels it later, by the id the CLI printed.
  const c2 = cli(h);
  assert.equal(await c2.run(operationCancelCommand, [c.ctx.opId]), 0);
  assert.match(c2.out, new RegExp(`^${c.ctx.opId} cancelled: `));
  await h.service.idle();
  nothingLeft(h);
});

void test("operation show|wait|cancel take the id --no-wait prints; cancel is idempotent", async (t) => {
  const h = makeHarness({ sshReadyTimeoutMs: 60_000 });
  t.after(() => { h.close(); });
  h.host.sshReady = false;
  const c = cli(h);
  assert.equal(await c.run(vmCreateCommand, ["--name", "eps", "--no-wait"]), 0);
  const id = c.out.trim();
  await until("the create to wait for ssh", () => h.host.calls.includes("ssh.waitReady"));
  const show = cli(h);
  assert.equal(await show.run(operationShowCommand, [id]), 0);
  assert.match(show.out, /kind +vm\.create eps/);
  assert.match(show.out, /state +running/);
  assert.match(show.out, /wait-ssh +running \(\d/);
  assert.match(show.out, /lease +succeeded/);
  const waiter = cli(h);
  const waiting = waiter.run(operationWaitCommand, [id]);
  const canceller = cli(h);
  assert.equal(await canceller.run(operationCancelCommand, [id]), 0);
  assert.match(canceller.out, /cancelled: step wait-ssh failed: cancelled/);
  assert.equal(await waiting, 1, "operation wait exits 1 for an operation that ended failed");
  assert.match(waiter.err, new RegExp(`error: ${id} \\(vm\\.create eps\\) failed: .*cancelled`));
  nothingLeft(h);
  const again = cli(h);
  assert.equal(await again.run(operationCancelCommand, [id]), 0);
  assert.equal(again.out, `${id} already failed; nothing to cancel\n`);
  const json = cli(h);
  assert.equal(await json.run(operationShowCommand, [id, "--json"]), 0);
  assert.equal((JSON.parse(json.out) as OperationView).state, "failed");
  await assert.rejects(cli(h).run(operationShowCommand, ["op-nosuchthing0"]), /no operation "op-nosuchthing0"/);
  await assert.rejects(cli(h).run(operationShowCommand, []), /give exactly one operation id/);
});

void test("a cancelled start leaves the VM stopped with its disks and lease", async (t) => {
  const h = makeHarness({ sshReadyTimeoutMs: 60_000 });
  t.after(() => { h.close(); });
  const c = cli(h);
  assert.equal(await c.run(vmCreateCommand, ["--name", "zeta"]), 0);
  await h.service.stop("zeta", true, "op-stopzeta0001");
  h.host.sshReady = false;
  const ref = await h.service.start("zeta", "op-startzeta001");
  await until("the start to wait for ssh", () => h.host.calls.filter((x) => x === "ssh.waitReady").length === 2);
  assert.equal(await cli(h).run(operationCancelCommand, [ref.operation_id]), 0);
  await h.service.idle();
  assert.equal(h.vms.getByName("zeta")?.state, "stopped");
  assert.ok(h.host.live.has(`lease:${ref.vm.id}`) && h.host.live.has(`work:${ref.vm.id}`), "the VM keeps its lease and work disk");
  assert.ok(!h.host.live.has(`tap:${ref.vm.id}`) && !h.host.live.has(`vmm:${ref.vm.id}`), "what only a running VM holds is released");
});

void test("runSteps stops between steps once its signal aborts, unwinding what ran", async () => {
  const ac = new AbortController();
  const undone: string[] = [];
  const steps = [
    { name: "a", run: () => { ac.abort(new Error("cancelled")); return Promise.resolve(); }, undo: () => { undone.push("a"); return Promise.resolve(); } },
    { name: "b", run: () => Promise.reject(new Error("must not run")) },
  ];
  const e = await runSteps(steps, {}, undefined, ac.signal).then(() => undefined, (x: unknown) => x);
  assert.ok(e instanceof StepFailedError);
  assert.equal(e.message, "stopped before step b: cancelled");
  assert.deepEqual(undone, ["a"]);
});

void test("without a TTY a long step gets a heartbeat line every 30 s, not one per poll", () => {
  let now = Date.parse("2026-01-01T00:00:00Z");
  let out = "";
  const r = new ProgressRenderer({ write: (s: string) => { out += s; } }, "image default", () => now);
  const op = (state: OperationView["steps"][number]["state"]): OperationView => ({
    id: "op-x", kind: "image.build", target: "default", state: "running", created_at: "", updated_at: "", revision: 1,
    steps: [{ name: "debootstrap", state, started_at: "2026-01-01T00:00:00.000Z", elapsed_ms: 0 }],
  });
  r.render(op("running"));
  now += 10_000;
  r.render(op("running"));
  assert.equal(out, "", "no line before the heartbeat is due");
  now += HEARTBEAT_MS - 10_000;
  r.render(op("running"));
  now += 10_000;
  r.render(op("running"));
  assert.equal(out, "  debootstrap  still running (30.0 s)\n");
  now += HEARTBEAT_MS;
  r.render(op("running"));
  assert.equal(out, "  debootstrap  still running (30.0 s)\n  debootstrap  still running (1m10s)\n");
});

void test("vm stop and vm start are idempotent (exit 0, saying so); --all picks the VMs each applies to", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  for (const name of ["one", "two"]) assert.equal(await cli(h).run(vmCreateCommand, ["--name", name]), 0);
  const stop = cli(h);
  assert.equal(await stop.run(vmStopCommand, ["one"]), 0);
  assert.equal(stop.out, "one stopped\n");
  const again = cli(h);
  assert.equal(await again.run(vmStopCommand, ["one"]), 0);
  assert.equal(again.out, "one was already stopped\n");
  const all = cli(h);
  assert.equal(await all.run(vmStopCommand, ["--all"]), 0);
  assert.equal(all.out, "two stopped\n", "--all stops only what runs");
  const none = cli(h);
  assert.equal(await none.run(vmStopCommand, ["--all"]), 0);
  assert.equal(none.err, "no running VMs to stop\n");
  const startOne = cli(h);
  assert.equal(await startOne.run(vmStartCommand, ["one"]), 0);
  const startAll = cli(h);
  assert.equal(await startAll.run(vmStartCommand, ["--all"]), 0);
  assert.match(startAll.out, /^two is running at /);
  const running = cli(h);
  assert.equal(await running.run(vmStartCommand, ["one"]), 0);
  assert.match(running.out, /^one is already running at 172\.16\.90\.\d+\n$/);
  await assert.rejects(cli(h).run(vmStopCommand, ["one", "--all"]), /names or --all, not both/);
  const rm = cli(h);
  assert.equal(await rm.run(vmDeleteCommand, ["--all", "--force"]), 0);
  assert.equal(rm.out, "one deleted\ntwo deleted\n");
  nothingLeft(h);
});

void test("vm run without --rm ends by saying the VM still runs and how to remove it", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const c = cli(h);
  assert.equal(await c.run(makeVmRunCommand(() => Promise.resolve(0)), ["--name", "kept", "--", "true"]), 0);
  assert.match(c.err, /kept is still running; remove it with: banger vm rm --force kept \(or use vm run --rm\)\n$/);
  const rm = cli(h);
  assert.equal(await rm.run(makeVmRunCommand(() => Promise.resolve(3)), ["--name", "gone", "--rm", "--", "false"]), 3);
  assert.doesNotMatch(rm.err, /still running/);
  assert.equal(h.vms.getByName("gone"), undefined);
});

void test("vm prune deletes stopped VMs only; --dry-run lists them; nothing to prune exits 0", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  for (const name of ["keep", "old1", "old2"]) assert.equal(await cli(h).run(vmCreateCommand, ["--name", name]), 0);
  await h.service.stop("old1", true, "op-stopold10001");
  await h.service.stop("old2", true, "op-stopold20001");
  const dry = cli(h);
  assert.equal(await dry.run(vmPruneCommand, ["--dry-run"]), 0);
  assert.equal(dry.out, "would remove VM old1\nwould remove VM old2\n");
  const dryJson = cli(h);
  assert.equal(await dryJson.run(vmPruneCommand, ["-n", "--json"]), 0);
  assert.deepEqual(JSON.parse(dryJson.out), { dry_run: true, removed: ["old1", "old2"], failed: [] });
  assert.equal(h.vms.list().length, 3);
  const c = cli(h);
  assert.equal(await c.run(vmPruneCommand, ["--json"]), 0);
  assert.deepEqual(JSON.parse(c.out), { dry_run: false, removed: ["old1", "old2"], failed: [] });
  assert.deepEqual(h.vms.list().map((v) => v.name), ["keep"]);
  const id = h.vms.getByName("keep")?.id ?? "";
  assert.deepEqual([...h.host.live].filter((x) => !x.endsWith(id) && !x.endsWith(":keep")), [], "the pruned VMs hold nothing on the host");
  const again = cli(h);
  assert.equal(await again.run(vmPruneCommand, []), 0);
  assert.equal(again.err, "no VMs to prune\n");
  const none = cli(h);
  assert.equal(await none.run(vmPruneCommand, ["--json"]), 0);
  assert.deepEqual(JSON.parse(none.out), { dry_run: false, removed: [], failed: [] });
});

void test("image prune removes images no VM uses and reports a refusal without stopping", async () => {
  const removed: string[] = [];
  let out = "";
  let err = "";
  const ctx = {
    stdout: { write: (s: string) => { out += s; } },
    stderr: { write: (s: string) => { err += s; } },
    opId: "op-pruneimages0",
    call: (method: string, params: { name?: string }) => {
      if (method === "image.list") return Promise.resolve({ images: [{ name: "a", used_by: [] }, { name: "b", used_by: ["vm1"] }, { name: "c", used_by: [] }] });
      if (params.name === "a") return Promise.reject(new Error("image a is used by VM(s) late; delete them first"));
      removed.push(params.name ?? "");
      return Promise.resolve({ name: params.name, deleted: true });
    },
  } as unknown as CliContext;
  assert.equal(await imagePruneCommand.run([], ctx), 1);
  assert.deepEqual(removed, ["c"]);
  assert.equal(out, "removed image c\n");
  assert.match(err, /^error: image a: image a is used by VM\(s\) late; delete them first \(op-pruneimages0\)\n$/);
});

void test("vm create --root-size grows the new root disk and boots cold; vm resize grows a stopped VM's disks", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const c = cli(h);
  assert.equal(await c.run(vmCreateCommand, ["--name", "big", "--root-size", "3"]), 0);
  const id = h.vms.getByName("big")?.id ?? "";
  assert.deepEqual(h.host.grown, [`root:${id}:${3 * 1024 ** 3}`]);
  await assert.rejects(cli(h).run(vmCreateCommand, ["--name", "zero", "--root-size", "0"]), /--root-size takes a whole number greater than 0, e\.g\. --root-size 4; got "0"/);
  await assert.rejects(cli(h).run(vmResizeCommand, ["big", "--work", "4"]), /big is running; resize needs it stopped/);
  await h.service.stop("big", false, "op-stopbig00001");
  const r = cli(h);
  assert.equal(await r.run(vmResizeCommand, ["big", "--root", "5", "--work", "4"]), 0);
  assert.equal(r.out, "big resized: root disk 5 GiB, work disk 4 GiB; start it with: banger vm start big\n");
  assert.equal(h.host.grown.length, 3);
  assert.match(h.host.grown[2] ?? "", new RegExp(`^work:.*work-${id}\\.ext4:${4 * 1024 ** 3}$`));
  assert.equal(h.vms.getByName("big")?.diskGib, 4, "the record says the work disk's new size");
  const j = cli(h);
  assert.equal(await j.run(vmResizeCommand, ["big", "--work", "5", "--json"]), 0);
  assert.deepEqual([(JSON.parse(j.out) as { name: string; disk_gib: number }).name, (JSON.parse(j.out) as { disk_gib: number }).disk_gib], ["big", 5]);
  await assert.rejects(cli(h).run(vmResizeCommand, ["big", "--work", "2"]), /smaller than big's work disk \(5 GiB\); disks only grow/);
  await assert.rejects(cli(h).run(vmResizeCommand, ["big"]), /give --root GIB, --work GIB or both/);
  assert.equal(h.host.grown.length, 4, "refused resizes touch no disk");
});

void test("vm stats shows the guest's own memory and disk use next to host RSS, or why it has none", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const asked: string[] = [];
  const guestUsage = (_r: unknown, target: { host: string }): Promise<{ usage: { memory: { totalBytes: number; availableBytes: number; usedBytes: number }; disks: { mount: string; sizeBytes: number; usedBytes: number; availableBytes: number }[] } }> => {
    asked.push(target.host);
    return Promise.resolve({ usage: { memory: { totalBytes: 1000 * 2 ** 20, availableBytes: 820 * 2 ** 20, usedBytes: 180 * 2 ** 20 }, disks: [{ mount: "/", sizeBytes: 2048 * 2 ** 20, usedBytes: 700 * 2 ** 20, availableBytes: 1300 * 2 ** 20 }, { mount: "/root", sizeBytes: 1024 * 2 ** 20, usedBytes: 2 ** 20, availableBytes: 1000 * 2 ** 20 }] } });
  };
  assert.equal(await cli(h).run(vmCreateCommand, ["--name", "st"]), 0);
  const c = cli(h, { guestUsage });
  assert.equal(await c.run(vmStatsCommand, ["st"]), 0);
  assert.deepEqual(asked, [h.vms.getByName("st")?.handles.ip]);
  assert.match(c.out, /^guest mem: 180\.0 MiB used of 1000\.0 MiB, 820\.0 MiB available: what the guest's kernel reports/m);
  assert.match(c.out, /^host RSS: .* of 256 MiB: host memory the VMM holds/m);
  assert.match(c.out, /^root disk: 700\.0 MiB used of 2048\.0 MiB in the guest \(\/\); /m);
  assert.match(c.out, /^work disk: 1\.0 MiB used of 1024\.0 MiB in the guest \(\/root\); /m);
  await h.service.stop("st", true, "op-stopst000001");
  const stopped = cli(h, { guestUsage });
  assert.equal(await stopped.run(vmStatsCommand, ["st", "--json"]), 0);
  const doc = JSON.parse(stopped.out) as { guest: unknown; guest_error: string };
  assert.equal(doc.guest, null);
  assert.equal(doc.guest_error, "the VM is stopped");
  assert.equal(asked.length, 1, "a stopped guest is not asked");
});

void test("vm create keeps the image's own /etc/fstab entries, merged with banger's mounts", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  h.host.imageFiles.set("tiny:/etc/fstab", Buffer.from("# image mounts\nproc /proc proc defaults 0 0\n/dev/vdb /data ext4 defaults 0 2\nLABEL=cache /var/cache ext4 nofail 0 2\n"));
  assert.equal(await cli(h).run(vmCreateCommand, ["--name", "fs"]), 0);
  const fstab = h.host.edits.filter((e) => e.disk === "root").flatMap((e) => e.edits.files).find((f) => f.path === "/etc/fstab")?.content.toString();
  assert.equal(fstab, [
    "# image mounts",
    "proc /proc proc defaults 0 0",
    "LABEL=cache /var/cache ext4 nofail 0 2",
    "/dev/vdb /root ext4 defaults 0 2",
    "tmpfs /run tmpfs defaults,nodev,nosuid,mode=0755 0 0",
    "tmpfs /tmp tmpfs defaults,nodev,nosuid,mode=1777 0 0",
    "",
  ].join("\n"), "the image's entries stay; one that would take banger's work disk elsewhere is dropped");
});
