import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Banger, BangerError, type ProgressEvent } from "../../../src/sdk/index.js";
import { startFakeDaemon, type FakeDaemon } from "./fake-daemon.js";

async function withDaemon(t: { after(fn: () => Promise<void>): void }): Promise<{ fake: FakeDaemon; banger: Banger }> {
  const fake = await startFakeDaemon();
  t.after(() => fake.close());
  return { fake, banger: await Banger.connect({ socketPath: fake.socket }) };
}

void test("create sends the daemon's params (checked by its schema), reports every step as progress and resolves with the ready VM", async (t) => {
  const { fake, banger } = await withDaemon(t);
  const events: ProgressEvent[] = [];
  const vm = await banger.vms.create({ image: "tiny", name: "p1", vcpus: 2, memoryMib: 512, diskGib: 3, ports: ["8080:80", { hostPort: 5353, guestPort: 53, proto: "udp" }], onProgress: (e) => events.push(e) });
  assert.equal(vm.name, "p1");
  assert.equal(vm.state, "running");
  assert.equal(vm.dnsName, "p1.vm");
  const create = fake.received.find((r) => r.method === "vm.create");
  assert.deepEqual(create?.params, { image: "tiny", name: "p1", vcpus: 2, memory_mib: 512, disk_gib: 3, ports: [{ host_ip: "127.0.0.1", host_port: 8080, guest_port: 80, proto: "tcp" }, { host_ip: "127.0.0.1", host_port: 5353, guest_port: 53, proto: "udp" }] });
  assert.deepEqual(events.map((e) => [e.state, e.step?.name ?? "-"]), [["running", "allocate"], ["running", "boot"], ["succeeded", "-"]]);
  assert.ok(events.every((e) => e.kind === "vm.create" && e.operationId === events[0]?.operationId));
  // One op id follows the whole create (create, every long poll, the final get), so the daemon's log ties them together.
  const ids = new Set(fake.received.filter((r) => r.method !== "daemon.ping").map((r) => r.opId));
  assert.equal(ids.size, 1);
  assert.deepEqual((await banger.vms.list()).map((v) => v.name), ["p1"]);
});

void test("a bad image is a BangerError with the RPC code and the op id the daemon logged; a bad port spec fails before any call", async (t) => {
  const { fake, banger } = await withDaemon(t);
  await assert.rejects(banger.vms.create({ image: "nope" }), (e: unknown) => {
    assert.ok(e instanceof BangerError);
    assert.equal(e.code, "not_found");
    assert.match(e.message, /unknown image "nope"/);
    assert.equal(e.opId, fake.received.find((r) => r.method === "vm.create")?.opId);
    return true;
  });
  const before = fake.received.length;
  await assert.rejects(banger.vms.create({ image: "tiny", ports: ["80"] }), (e: unknown) => e instanceof BangerError && e.code === "bad_params" && /not a port mapping/.test(e.message));
  assert.equal(fake.received.length, before, "nothing reached the daemon");
  // Egress goes as the text `vm egress set` takes; the daemon's own schema checks it.
  await banger.vms.create({ image: "tiny", name: "eg1", egress: { allow: ["example.com", "10.0.0.0/8"] }, isolate: true });
  assert.deepEqual(fake.received.find((r) => r.method === "vm.create" && (r.params as { name?: string }).name === "eg1")?.params, { image: "tiny", name: "eg1", egress: "allow=example.com,10.0.0.0/8", isolate: true });
  await assert.rejects(banger.vms.get("ghost"), (e: unknown) => e instanceof BangerError && e.code === "not_found");
});

void test("a failed create rejects with operation_failed naming the step, and carries the operation", async (t) => {
  const { fake, banger } = await withDaemon(t);
  fake.script = { steps: ["allocate", "boot"], end: { failedAt: "boot", error: "qemu exited 1" } };
  await assert.rejects(banger.vms.create({ image: "tiny", name: "f1" }), (e: unknown) => {
    assert.ok(e instanceof BangerError);
    assert.equal(e.code, "operation_failed");
    assert.match(e.message, /vm\.create f1 failed at boot: qemu exited 1/);
    assert.equal(e.operation?.steps.find((s) => s.state === "failed")?.name, "boot");
    return true;
  });
});

void test("aborting a create ends its long poll at once, deletes the half-made VM and rejects with the signal's reason", async (t) => {
  const { fake, banger } = await withDaemon(t);
  fake.script = { steps: ["boot"], end: "never" };
  const ac = new AbortController();
  const created = banger.vms.create({ image: "tiny", name: "a1", signal: ac.signal });
  for (let i = 0; i < 100 && fake.openWaits() === 0; i++) await sleep(10);
  assert.equal(fake.openWaits(), 1, "the SDK is in a long poll");
  const t0 = Date.now();
  ac.abort();
  await assert.rejects(created, (e: unknown) => e instanceof Error && e.name === "AbortError");
  assert.ok(Date.now() - t0 < 2_000, "no wait for the 10 s long poll");
  assert.deepEqual(fake.received.filter((r) => r.method === "vm.delete").map((r) => r.params), [{ name: "a1", force: true }]);
  assert.deepEqual((await banger.vms.list()).map((v) => v.name), []);
  for (let i = 0; i < 100 && fake.openWaits() > 0; i++) await sleep(10);
  assert.equal(fake.openWaits(), 0, "the daemon saw the long poll's connection end");
  // An already-aborted signal sends nothing.
  const n = fake.received.length;
  await assert.rejects(banger.vms.create({ image: "tiny", signal: AbortSignal.abort() }), (e: unknown) => e instanceof Error && e.name === "AbortError");
  assert.equal(fake.received.length, n);
});

void test("await using deletes the VM at scope end, also when the scope throws; one already gone is no error", async (t) => {
  const { fake, banger } = await withDaemon(t);
  {
    await using vm = await banger.vms.create({ image: "tiny", name: "d1" });
    assert.equal(vm.state, "running");
  }
  assert.deepEqual(fake.received.filter((r) => r.method === "vm.delete").map((r) => r.params), [{ name: "d1", force: true }]);
  await assert.rejects((async () => {
    await using vm = await banger.vms.create({ image: "tiny", name: "d2" });
    await vm.ports.add("9000:90");
    throw new Error("the test body failed");
  })(), /the test body failed/);
  assert.deepEqual(fake.received.filter((r) => r.method === "vm.delete").map((r) => (r.params as { name: string }).name), ["d1", "d2"]);
  assert.deepEqual(fake.received.find((r) => r.method === "vm.port_add")?.params, { name: "d2", ports: [{ host_ip: "127.0.0.1", host_port: 9000, guest_port: 90, proto: "tcp" }] });
  {
    await using vm = await banger.vms.create({ image: "tiny", name: "d3" });
    await vm.delete();
  }
  assert.deepEqual((await banger.vms.list()).map((v) => v.name), []);
});

void test("connect to a daemon that is not there is a BangerError `unavailable` naming the socket", async () => {
  await assert.rejects(Banger.connect({ socketPath: "/nonexistent/bangerd.sock" }), (e: unknown) => e instanceof BangerError && e.code === "unavailable" && /\/nonexistent\/bangerd\.sock/.test(e.message) && /^op-/.test(e.opId ?? ""));
});
