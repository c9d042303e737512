import assert from "node:assert/strict";
import { test } from "node:test";
import { RpcError } from "../../../src/rpc/errors.js";
import type { VmmDeps } from "../../../src/daemon/vm/deps.js";
import { freshOpId, makeHarness, type Harness } from "./fakes.js";

async function running(h: Harness, name: string): Promise<string> {
  const ref = await h.service.create({ name }, freshOpId());
  await h.service.idle();
  return ref.vm.id;
}

void test("pause freezes a running VM and keeps its lease, tap, NAT and DNS name; resume thaws it; both are idempotent", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const id = await running(h, "web");
  const before = h.vms.getById(id);
  h.host.calls.length = 0;
  const paused = await h.service.pause("web", freshOpId());
  assert.deepEqual([paused.vm.state, paused.changed], ["paused", true]);
  assert.deepEqual(h.host.calls, ["vmm.pause"]);
  assert.ok(h.host.live.has("dns:web") && h.host.live.has(`tap:${id}`) && h.host.live.has(`vmm:${id}`), `kept: ${[...h.host.live].join(", ")}`);
  assert.equal(paused.vm.handles.ip, before?.handles.ip);
  assert.equal(paused.vm.startedAt, before?.startedAt, "uptime goes on");
  assert.equal((await h.service.pause("web", freshOpId())).changed, false, "pausing a paused VM changes nothing");
  assert.deepEqual(h.host.calls, ["vmm.pause"], "and asks the VMM nothing");
  const resumed = await h.service.resume("web", freshOpId());
  assert.deepEqual([resumed.vm.state, resumed.changed], ["running", true]);
  assert.equal((await h.service.resume("web", freshOpId())).changed, false);
  assert.deepEqual(h.host.calls, ["vmm.pause", "vmm.resume"]);
});

void test("pause and resume need a VM that runs; a refused pause leaves it running", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await running(h, "web");
  await h.service.stop("web", false, freshOpId());
  await assert.rejects(h.service.pause("web", freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /cannot pause VM web: it is stopped; pause needs state running \(start it with "banger vm start web"\)/.test(e.message));
  await assert.rejects(h.service.resume("web", freshOpId()), /cannot resume VM web: it is stopped; resume needs state paused/);
  await assert.rejects(h.service.pause("nope", freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "not_found");
  await h.service.start("web", freshOpId());
  await h.service.idle();
  h.host.failOn.add("vmm.pause");
  await assert.rejects(h.service.pause("web", freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "operation_failed" && /could not pause web: injected failure/.test(e.message));
  assert.equal(h.vms.getByName("web")?.state, "running");
});

void test("a paused VM is thawed before a graceful stop or restart (it could not act on ctrl-alt-del); --force kills it frozen", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await running(h, "a");
  await running(h, "b");
  await running(h, "c");
  for (const n of ["a", "b", "c"]) await h.service.pause(n, freshOpId());
  h.host.calls.length = 0;
  assert.equal((await h.service.stop("a", false, freshOpId())).state, "stopped");
  assert.equal(h.host.calls[0], "vmm.resume", "thawed first");
  assert.ok(h.host.calls.includes("vmm.stop") && !h.host.calls.includes("vmm.kill"), `then stopped gracefully: ${h.host.calls.join(", ")}`);
  h.host.calls.length = 0;
  assert.equal((await h.service.stop("b", true, freshOpId())).state, "stopped");
  assert.ok(!h.host.calls.includes("vmm.resume") && h.host.calls.includes("vmm.kill"), h.host.calls.join(", "));
  // A thaw that fails does not keep the VM from stopping: signals end a frozen VMM too.
  h.host.failOn.add("vmm.resume");
  await h.service.restart("c", false, freshOpId());
  await h.service.idle();
  assert.equal(h.vms.getByName("c")?.state, "running");
});

void test("delete refuses a paused VM without --force, and with it removes everything", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const id = await running(h, "web");
  await h.service.pause("web", freshOpId());
  await assert.rejects(h.service.delete("web", false, freshOpId()), /VM web is paused: stop it first/);
  await h.service.delete("web", true, freshOpId());
  assert.equal(h.vms.getById(id), undefined);
  assert.deepEqual([...h.host.live].filter((x) => x.includes(id) || x === "dns:web"), []);
});

void test("a paused VM survives a daemon restart paused (DNS back, watched); one whose VMM died is stopped; a VMM that exits while paused stops its VM", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const kept = await running(h, "kept");
  const dead = await running(h, "dead");
  for (const n of ["kept", "dead"]) await h.service.pause(n, freshOpId());
  for (const n of ["kept", "dead"]) h.host.live.delete(`dns:${n}`);
  h.host.exitWatchers.clear();
  (h.env.deps.vmm as { isAlive: VmmDeps["isAlive"] }).isAlive = (handle) => Promise.resolve(handle["vmId"] === kept);
  const r = await h.service.reconcile(freshOpId());
  assert.deepEqual([r.adopted, r.stopped], [["kept"], ["dead"]]);
  assert.equal(h.vms.getById(kept)?.state, "paused");
  assert.equal(h.vms.getById(dead)?.state, "stopped");
  assert.ok(h.host.live.has("dns:kept"));
  const exited = h.host.exitWatchers.get(kept);
  assert.ok(exited !== undefined, "the adopted paused VM's VMM is watched");
  exited();
  await h.service.idle();
  assert.equal(h.vms.getById(kept)?.state, "stopped");
  assert.match(h.vms.getById(kept)?.lastError ?? "", /exited on its own/);
});
