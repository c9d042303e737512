import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { snapshotFiles, state } from "../../../src/paths/paths.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { freshOpId, makeHarness, type Harness } from "./fakes.js";

async function running(h: Harness, name: string): Promise<string> {
  const ref = await h.service.create({ name }, freshOpId());
  await h.service.idle();
  return ref.vm.id;
}

void test("vm snapshot pauses, clones both disks and the kernel, saves state, resumes, and records it", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await running(h, "web");
  h.host.calls.length = 0;
  const snap = await h.service.snapshot("web", "s1", freshOpId());
  assert.deepEqual(h.host.calls, ["vmm.pause", "storage.cloneFile", "storage.cloneFile", "storage.cloneFile", "vmm.saveState", "vmm.resume"]);
  assert.equal(snap.state, "ready");
  assert.equal(snap.stateBytes, 5);
  assert.equal(snap.vmmVersion, "fake-vmm-1");
  assert.equal(snap.sourceVmName, "web");
  const dir = state.snapshotDir(h.dir, snap.id);
  assert.equal(readFileSync(snapshotFiles.vmState(dir), "utf8"), "STATE");
  for (const f of [snapshotFiles.rootDisk(dir), snapshotFiles.workDisk(dir), snapshotFiles.kernel(dir)]) assert.ok(existsSync(f), f);
  assert.equal(h.vms.getByName("web")?.state, "running");
});

void test("a paused VM is snapshotted without being resumed; a stopped one is refused", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await running(h, "web");
  await h.service.pause("web", freshOpId());
  h.host.calls.length = 0;
  await h.service.snapshot("web", undefined, freshOpId());
  assert.ok(!h.host.calls.includes("vmm.pause") && !h.host.calls.includes("vmm.resume"), h.host.calls.join(","));
  assert.equal(h.vms.getByName("web")?.state, "paused");
  await h.service.resume("web", freshOpId());
  await h.service.stop("web", false, freshOpId());
  await assert.rejects(h.service.snapshot("web", undefined, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /needs a running or paused VM/.test(e.message));
});

void test("a failed save leaves no snapshot, no files, and the VM running", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await running(h, "web");
  h.host.failSave = true;
  await assert.rejects(h.service.snapshot("web", "s1", freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "operation_failed" && /fake save failure/.test(e.message));
  assert.deepEqual(h.service.listSnapshots(), []);
  assert.deepEqual(existsSync(state.snapshotsDir(h.dir)) ? readdirSync(state.snapshotsDir(h.dir)) : [], []);
  assert.equal(h.host.calls.at(-1), "vmm.resume", "the frozen guest runs again");
  assert.equal(h.vms.getByName("web")?.state, "running");
});

void test("snapshot names: invalid, reserved and duplicate names are refused clearly", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await running(h, "web");
  await assert.rejects(h.service.snapshot("web", "../x", freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "bad_params" && /invalid snapshot name/.test(e.message));
  await assert.rejects(h.service.snapshot("web", "template.tiny", freshOpId()), /warm templates/);
  await h.service.snapshot("web", "s1", freshOpId());
  await assert.rejects(h.service.snapshot("web", "s1", freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /already exists/.test(e.message));
  assert.equal(h.service.listSnapshots().length, 1);
});

void test("vm restore makes a new VM from the snapshot's disks and state, sends it a new identity, and outlives the source", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const srcId = await running(h, "web");
  const snap = await h.service.snapshot("web", "s1", freshOpId());
  await h.service.delete("web", true, freshOpId());
  assert.equal(h.vms.getById(srcId), undefined);
  h.host.calls.length = 0;
  const ref = await h.service.restore("s1", "copy", freshOpId());
  await h.service.idle();
  const vm = h.vms.getByName("copy");
  assert.equal(vm?.state, "running", vm?.lastError ?? "");
  assert.ok(!h.host.calls.some((c) => c.startsWith("storage.injectFiles")), `nothing written into restored disks: ${h.host.calls.join(",")}`);
  assert.ok(h.host.calls.includes("storage.cloneRootFrom") && h.host.calls.includes("vmm.resume") && h.host.calls.includes("vmm.sendIdentity"), h.host.calls.join(","));
  assert.ok(h.host.calls.indexOf("vmm.resume") < h.host.calls.indexOf("vmm.sendIdentity") && h.host.calls.indexOf("vmm.sendIdentity") < h.host.calls.indexOf("ssh.waitReady"));
  assert.deepEqual(h.host.identities, [{ name: "copy", ip: vm?.handles.ip ?? "", mac: vm?.handles.mac ?? "" }]);
  assert.equal((vm?.handles.root_disk as { from?: string } | undefined)?.from, snapshotFiles.rootDisk(state.snapshotDir(h.dir, snap.id)));
  assert.equal(ref.vm.name, "copy");
  assert.equal(h.service.mustGetSnapshot("s1").state, "ready", "the snapshot stays for more restores");
});

void test("a snapshot saved by another VMM build is refused with a reason; rm of a snapshot in use waits", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await running(h, "web");
  await h.service.snapshot("web", "s1", freshOpId());
  h.host.compatibility = "fake-vmm-2";
  await assert.rejects(h.service.restore("s1", undefined, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "bad_params" && /another VMM build/.test(e.message));
  h.host.compatibility = "fake-vmm-1";
  h.host.sshDelayMs = 200;
  await h.service.restore("s1", "r1", freshOpId());
  await assert.rejects(h.service.deleteSnapshot("s1", freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /being restored/.test(e.message));
  await h.service.idle();
  await h.service.deleteSnapshot("s1", freshOpId());
  assert.deepEqual(h.service.listSnapshots(), []);
  assert.deepEqual(readdirSync(state.snapshotsDir(h.dir)), []);
  assert.equal(h.vms.getByName("r1")?.state, "running", "a VM restored from a removed snapshot keeps running");
});

void test("vm fork starts K copies with their own names and leases, then removes its snapshot", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await running(h, "web");
  const r = await h.service.fork("web", { count: 2 }, freshOpId());
  assert.deepEqual(r.operations.map((o) => o.vm.name), ["web-fork-1", "web-fork-2"]);
  await h.service.idle();
  const forks = ["web-fork-1", "web-fork-2"].map((n) => h.vms.getByName(n));
  assert.ok(forks.every((f) => f?.state === "running"), forks.map((f) => f?.lastError).join("; "));
  const ips = new Set([h.vms.getByName("web")?.handles.ip, ...forks.map((f) => f?.handles.ip)]);
  assert.equal(ips.size, 3, "each copy has its own IP");
  assert.deepEqual(h.host.identities.map((i) => i.name).sort(), ["web-fork-1", "web-fork-2"]);
  assert.deepEqual(h.service.listSnapshots(), [], "the fork's snapshot is gone once its copies are made");
  assert.equal(h.vms.getByName("web")?.state, "running");
  await assert.rejects(h.service.fork("web", { count: 1, name: "web-fork-1" }, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "conflict");
  await assert.rejects(h.service.fork("web", { count: 0 }, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "bad_params");
  const named = await h.service.fork("web", { count: 2, name: "job" }, freshOpId());
  assert.deepEqual(named.operations.map((o) => o.vm.name), ["job-1", "job-2"]);
  await h.service.idle();
});

void test("image warm keeps a template; create restores from it when it matches, boots cold with a note when not, and --cold forces a boot", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const tpl = await h.service.warm("tiny", {}, freshOpId());
  await h.service.idle();
  assert.equal(tpl.name, "template.tiny");
  assert.equal(tpl.kind, "template");
  assert.deepEqual(h.vms.list(), [], "the template's own VM is gone");
  h.host.calls.length = 0;
  const warm = await h.service.create({ name: "a" }, freshOpId());
  await h.service.idle();
  assert.ok(h.host.calls.includes("storage.cloneRootFrom") && !h.host.calls.includes("storage.cloneRoot"), h.host.calls.join(","));
  assert.deepEqual((h.ops.get(warm.operation_id)?.result as { boot?: string } | undefined)?.boot, "snapshot");
  h.host.calls.length = 0;
  await h.service.create({ name: "b", cold: true }, freshOpId());
  await h.service.idle();
  assert.ok(h.host.calls.includes("storage.cloneRoot") && !h.host.calls.includes("storage.cloneRootFrom"));
  const bigger = await h.service.create({ name: "c", memoryMib: 512 }, freshOpId());
  await h.service.idle();
  const result = h.ops.get(bigger.operation_id)?.result as { boot?: string; note?: string } | undefined;
  assert.equal(result?.boot, "cold");
  assert.match(result?.note ?? "", /has 1 vCPUs, 256 MiB, 1 GiB; this VM asks for 1, 512, 1: booted cold; re-warm with "banger image warm tiny --vcpus 1 --memory 512 --disk 1"/);
  const again = await h.service.warm("tiny", {}, freshOpId());
  assert.notEqual(again.id, tpl.id);
  assert.deepEqual(h.service.listSnapshots().map((s) => s.name), ["template.tiny"], "re-warming replaces the template");
});

void test("start-up removes snapshots a previous daemon left half-saved, and forks' snapshots", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await running(h, "web");
  const kept = await h.service.snapshot("web", "kept", freshOpId());
  const fork = await h.service.snapshot("web", "web-fork-x", freshOpId(), "fork");
  await h.service.reconcile(freshOpId());
  assert.deepEqual(h.service.listSnapshots().map((s) => s.id), [kept.id]);
  assert.ok(!existsSync(state.snapshotDir(h.dir, fork.id)));
});
