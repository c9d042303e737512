import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { test } from "node:test";
import { state, vmFiles } from "../../../src/paths/paths.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { CREATE_STEPS } from "../../../src/daemon/vm/boot-steps.js";
import { stepNames } from "../../../src/daemon/vm/steps.js";
import type { VmmDeps } from "../../../src/daemon/vm/deps.js";
import { FAKE_PUB, freshOpId, makeHarness, type Harness } from "./fakes.js";

async function createAndWait(h: Harness, req: Parameters<Harness["service"]["create"]>[0] = {}): Promise<{ opId: string; name: string; id: string }> {
  const opId = freshOpId();
  const ref = await h.service.create(req, opId);
  assert.equal(ref.operation_id, opId);
  await h.service.idle();
  return { opId, name: ref.vm.name, id: ref.vm.id };
}

/** Lets the 2 s helper-down retries run (up to 10 s) until `done`; the caller asserts the outcome. */
async function retriedUntil(h: Harness, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    await h.service.idle();
  }
}

/** CREATE_STEPS as phases: a group's members share one phase and may run in any order. */
const PHASES: readonly (readonly string[])[] = CREATE_STEPS.map((e) => ("parallel" in e ? e.parallel.map((s) => s.name) : [e.name]));

function leftovers(h: Harness): string[] {
  return [...h.host.live];
}

void test("create runs every step in order, ends running, and records handles in the DB and handles.json", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const { opId, name, id } = await createAndWait(h, { name: "web" });
  assert.equal(name, "web");
  const vm = h.vms.getByName("web");
  assert.ok(vm !== undefined);
  assert.equal(vm.state, "running");
  assert.ok(vm.startedAt !== null);
  assert.equal(vm.handles.ip, "172.16.90.2");
  assert.equal(vm.handles.pid, 4242);
  // Grouped steps run concurrently: compare each phase's calls as a set, the phases in order.
  const calls = h.host.calls;
  assert.equal(calls[0], "network.lease");
  assert.deepEqual(calls.slice(1, 4).sort(), ["network.attach", "storage.cloneRoot", "storage.createWorkDisk"]);
  // The egress rules are in place before the VMM starts (configure phase, beside the disk edits).
  assert.deepEqual(calls.slice(4, 6).sort(), ["egress.apply", "storage.injectFiles.root"]);
  assert.deepEqual(calls.slice(6, 8).sort(), ["network.addNat", "vmm.launch"]);
  assert.deepEqual(calls.slice(8), ["ports.apply", "ssh.waitReady", "dns.publish"]);
  const mirror = JSON.parse(readFileSync(vmFiles.handles(state.vmDir(h.dir, id)), "utf8")) as { handles: { ip: string; pid: number } };
  assert.equal(mirror.handles.ip, "172.16.90.2");
  assert.equal(mirror.handles.pid, 4242);
  assert.equal(readFileSync(state.knownHosts(h.dir), "utf8"), `web.vm,172.16.90.2 ${FAKE_PUB}\n`);
  const op = h.ops.get(opId);
  assert.ok(op !== undefined);
  assert.equal(op.state, "succeeded");
  assert.equal(op.kind, "vm.create");
  assert.deepEqual(op.steps.map((s) => s.name), stepNames(CREATE_STEPS));
  assert.ok(op.steps.every((s) => s.state === "succeeded" && s.started_at !== null && typeof s.elapsed_ms === "number"));
  assert.deepEqual(op.result, { id, name: "web", ip: "172.16.90.2", boot: "cold" });
});

void test("create injects the guest contract files (busybox flavor); the work disk is made with the authorized key in it", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await createAndWait(h, { name: "tiny-one" });
  const root = h.host.edits.find((e) => e.disk === "root");
  const work = h.host.edits.find((e) => e.disk === "work");
  assert.ok(root !== undefined && work !== undefined);
  const files = new Map(root.edits.files.map((f) => [f.path, f]));
  assert.equal(files.get("/etc/hostname")?.content.toString(), "tiny-one\n");
  assert.match(files.get("/etc/banger/network")?.content.toString() ?? "", /^MAC=02:fc:00:00:00:02\nIP=172.16.90.2\nPREFIX=24\nGATEWAY=172.16.90.1\nDNS=1.1.1.1\n$/);
  assert.equal(files.get("/etc/dropbear/dropbear_ed25519_host_key")?.mode, 0o600);
  assert.match(files.get("/etc/fstab")?.content.toString() ?? "", /^\/dev\/vdb \/root ext4 defaults 0 2$/m);
  assert.deepEqual(work.edits.dirs, [{ path: "/.ssh", mode: 0o700, uid: 0, gid: 0 }]);
  assert.equal(work.edits.files[0]?.path, "/.ssh/authorized_keys");
  assert.equal(work.edits.files[0]?.mode, 0o600);
});

for (const [failingCall, failedStep] of [
  ["network.lease", "lease"],
  ["storage.cloneRoot", "clone-root"],
  ["storage.createWorkDisk", "work-disk"],
  ["storage.injectFiles.root", "inject-files"],
  ["network.attach", "network"],
  ["network.addNat", "nat"],
  ["vmm.launch", "launch-vmm"],
  ["ports.apply", "ports"],
  ["ssh.waitReady", "wait-ssh"],
  ["dns.publish", "publish-dns"],
] as const) {
  void test(`a failure in ${failingCall} unwinds every earlier step and leaves nothing behind`, async (t) => {
    const h = makeHarness();
    t.after(() => { h.close(); });
    h.host.failOn.add(failingCall);
    const { opId, id } = await createAndWait(h, { name: "doomed" });
    assert.deepEqual(leftovers(h), [], `left behind: ${leftovers(h).join(", ")}`);
    assert.equal(h.vms.getByName("doomed"), undefined, "the VM record is removed");
    assert.equal(existsSync(state.vmDir(h.dir, id)), false, "the VM dir is removed");
    assert.equal(h.db.prepare("SELECT COUNT(*) AS n FROM leases").get() !== undefined, true);
    const known = existsSync(state.knownHosts(h.dir)) ? readFileSync(state.knownHosts(h.dir), "utf8") : "";
    assert.equal(known, "", "the host key is unpinned");
    const op = h.ops.get(opId);
    assert.ok(op !== undefined);
    assert.equal(op.state, "failed");
    assert.match(op.error ?? "", new RegExp(`step ${failedStep} failed: injected failure in ${failingCall.replace(/\./g, "\\.")}`));
    const byName = new Map(op.steps.map((s) => [s.name, s.state]));
    assert.equal(byName.get(failedStep), "failed");
    const phase = PHASES.findIndex((p) => p.includes(failedStep));
    // Earlier phases and the failed step's siblings completed (and were undone where they have an undo); later phases never started.
    for (const s of PHASES.slice(0, phase + 1).flat().filter((n) => n !== failedStep)) assert.ok(["undone", "succeeded"].includes(byName.get(s) ?? ""), `${s} is ${byName.get(s)}`);
    for (const s of PHASES.slice(phase + 1).flat()) assert.equal(byName.get(s), "pending", `${s} never started`);
    // The name is free again.
    h.host.failOn.clear();
    await createAndWait(h, { name: "doomed" });
    assert.equal(h.vms.getByName("doomed")?.state, "running");
  });
}

void test("when an undo fails too, the VM is kept in state error with the reason, and rm --force cleans it up", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  h.host.failOn.add("vmm.launch");
  h.host.failOn.add("network.detach");
  const { opId } = await createAndWait(h, { name: "sticky" });
  const vm = h.vms.getByName("sticky");
  assert.equal(vm?.state, "error");
  assert.match(vm.lastError ?? "", /undo network: injected failure in network\.detach/);
  assert.match(h.ops.get(opId)?.error ?? "", /banger vm rm --force sticky/);
  assert.ok(h.host.live.has(`tap:${vm.id}`));
  h.host.failOn.clear();
  await h.service.delete("sticky", true, freshOpId());
  assert.deepEqual(leftovers(h), []);
  assert.equal(h.vms.getByName("sticky"), undefined);
});

void test("a VMM that dies during boot fails wait-ssh quickly with the console tail", async (t) => {
  const h = makeHarness({ sshReadyTimeoutMs: 60_000 });
  t.after(() => { h.close(); });
  h.host.sshReady = false;
  h.host.vmmAlive = false;
  // The console log the fake VMM "wrote" before dying.
  const origLaunch = h.env.deps.vmm.launch.bind(h.env.deps.vmm);
  (h.env.deps.vmm as { launch: typeof origLaunch }).launch = async (spec, opId) => {
    mkdirSync(spec.vmDir, { recursive: true });
    writeFileSync(spec.consoleLog, "Booting\nKernel panic - not syncing: VFS: Unable to mount root fs\n");
    return origLaunch(spec, opId);
  };
  const t0 = Date.now();
  const { opId } = await createAndWait(h, { name: "panicky" });
  assert.ok(Date.now() - t0 < 5_000, "did not wait for the ssh timeout");
  const err = h.ops.get(opId)?.error ?? "";
  assert.match(err, /VMM exited while panicky was booting/);
  assert.match(err, /Kernel panic - not syncing/);
  assert.deepEqual(leftovers(h), []);
});

void test("bad input is refused synchronously with clear errors and nothing is created", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const expectRpc = async (req: Parameters<typeof h.service.create>[0], code: string, re: RegExp): Promise<void> => {
    await assert.rejects(h.service.create(req, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === code && re.test(e.message));
  };
  await expectRpc({ name: "Bad_Name" }, "bad_params", /must be a DNS label/);
  await expectRpc({ name: "-x" }, "bad_params", /starts or ends with '-'/);
  await expectRpc({ name: "a".repeat(64) }, "bad_params", /at most 63/);
  await expectRpc({ vcpus: 0 }, "bad_params", /--vcpus must be an integer from 1 to 32/);
  await expectRpc({ memoryMib: 64 }, "bad_params", /--memory \(MiB\) must be an integer from 128/);
  await expectRpc({ diskGib: 5000 }, "bad_params", /--disk/);
  await expectRpc({ image: "nope" }, "not_found", /unknown image "nope": build it with "banger image build --name nope"/);
  const tiny = h.images.get("tiny");
  assert.ok(tiny !== undefined);
  rmSync(tiny.kernelPath);
  await expectRpc({}, "not_found", /missing its kernel/);
  writeFileSync(tiny.kernelPath, "x");
  await createAndWait(h, { name: "dup" });
  await expectRpc({ name: "dup" }, "conflict", /a VM named "dup" already exists/);
  assert.equal(h.vms.list().length, 1);
  assert.equal(h.ops.get("op-does-not-exist"), undefined);
});

void test("generated names are adjective-noun DNS labels and unique", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const names = new Set<string>();
  for (let i = 0; i < 5; i++) names.add((await createAndWait(h)).name);
  assert.equal(names.size, 5);
  for (const n of names) assert.match(n, /^[a-z]+-[a-z]+(-[0-9]+)?$/);
});

void test("concurrent creates get distinct leases", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const refs = await Promise.all(Array.from({ length: 8 }, () => h.service.create({}, freshOpId())));
  await h.service.idle();
  const ips = refs.map((r) => h.vms.getById(r.vm.id)?.handles.ip);
  assert.equal(new Set(ips).size, 8);
  assert.ok(h.vms.list().every((v) => v.state === "running"));
});

void test("stop releases runtime resources but keeps disks and lease; start brings it back with the same IP", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const { id } = await createAndWait(h, { name: "cycle" });
  const ip = h.vms.getById(id)?.handles.ip;
  h.host.calls.length = 0;
  const stopped = await h.service.stop("cycle", false, freshOpId());
  assert.equal(stopped.state, "stopped");
  assert.deepEqual(h.host.calls, ["dns.unpublish", "vmm.stop", "ports.clear", "egress.clear", "network.detach", "storage.deactivateRoot"]);
  assert.deepEqual([...h.host.live].sort(), [`lease:${id}`, `root:${id}`, `work:${id}`]);
  assert.equal(h.vms.getById(id)?.handles.pid, undefined);
  // Idempotent, as docker's: answered as it is, with nothing touched on the host.
  h.host.calls.length = 0;
  const again = await h.service.stop("cycle", false, freshOpId());
  assert.equal(again.state, "stopped");
  assert.equal(again.changed, false);
  assert.deepEqual(h.host.calls, []);

  const opId = freshOpId();
  await h.service.start("cycle", opId);
  assert.equal(h.vms.getById(id)?.state, "starting");
  await h.service.idle();
  const vm = h.vms.getById(id);
  assert.equal(vm?.state, "running");
  assert.equal(vm.handles.ip, ip);
  assert.equal(h.ops.get(opId)?.state, "succeeded");
  const noOp = freshOpId();
  assert.equal((await h.service.start("cycle", noOp)).changed, false);
  assert.equal(h.ops.get(noOp), undefined, "an already running VM gets no operation");
});

void test("stop --force kills instead of a graceful shutdown", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await createAndWait(h, { name: "hard" });
  h.host.calls.length = 0;
  await h.service.stop("hard", true, freshOpId());
  assert.ok(h.host.calls.includes("vmm.kill"));
  assert.ok(!h.host.calls.includes("vmm.stop"));
});

void test("a failed start unwinds, keeps the lease and disks, and leaves the VM stopped with the reason", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const { id } = await createAndWait(h, { name: "flaky" });
  await h.service.stop("flaky", false, freshOpId());
  h.host.failOn.add("vmm.launch");
  const opId = freshOpId();
  await h.service.start("flaky", opId);
  await h.service.idle();
  const vm = h.vms.getById(id);
  assert.equal(vm?.state, "stopped");
  assert.match(vm.lastError ?? "", /launch-vmm/);
  assert.deepEqual([...h.host.live].sort(), [`lease:${id}`, `root:${id}`, `work:${id}`]);
  assert.equal(h.ops.get(opId)?.state, "failed");
});

void test("restart stops then boots again as one operation", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const { id } = await createAndWait(h, { name: "again" });
  h.host.calls.length = 0;
  const opId = freshOpId();
  await h.service.restart("again", false, opId);
  await h.service.idle();
  assert.equal(h.vms.getById(id)?.state, "running");
  assert.deepEqual(h.ops.get(opId)?.steps.map((s) => s.name), ["stop", "lease", "activate-root", "pin-host-key", "network", "egress", "launch-vmm", "nat", "ports", "wait-ssh", "publish-dns"]);
  assert.ok(h.host.calls.indexOf("vmm.stop") < h.host.calls.indexOf("vmm.launch"));
});

void test("delete refuses a running VM without --force, and with it removes everything", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const { id } = await createAndWait(h, { name: "gone" });
  await createAndWait(h, { name: "stays" });
  await assert.rejects(h.service.delete("gone", false, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /stop it first/.test(e.message));
  await h.service.delete("gone", true, freshOpId());
  assert.equal(h.vms.getByName("gone"), undefined);
  assert.ok([...h.host.live].every((r) => !r.includes(id)), `left: ${[...h.host.live].join(",")}`);
  assert.equal(existsSync(state.vmDir(h.dir, id)), false);
  assert.doesNotMatch(readFileSync(state.knownHosts(h.dir), "utf8"), /gone\.vm/);
  assert.match(readFileSync(state.knownHosts(h.dir), "utf8"), /stays\.vm/);
  await assert.rejects(h.service.delete("gone", false, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "not_found");
});

void test("delete is collect-and-continue in its stop phase, and keeps disks and lease while that phase has failed", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const { id } = await createAndWait(h, { name: "messy" });
  h.host.failOn.add("network.detach");
  await assert.rejects(h.service.delete("messy", true, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "operation_failed" && /detach-network: injected failure/.test(e.message));
  // The rest of what runs was still torn down (the failed detach leaves its tap and NAT); the
  // address is not released while the network may still carry it, nor the disks, until a retry.
  assert.deepEqual([...h.host.live].sort(), [`lease:${id}`, `nat:${id}`, `root:${id}`, `tap:${id}`, `work:${id}`]);
  assert.equal(h.vms.getById(id)?.state, "error");
  h.host.failOn.clear();
  await h.service.delete("messy", true, freshOpId());
  assert.deepEqual([...h.host.live], []);
});

void test("delete --force interrupts a create that is stuck waiting for ssh", async (t) => {
  const h = makeHarness({ sshReadyTimeoutMs: 60_000 });
  t.after(() => { h.close(); });
  h.host.sshReady = false;
  const opId = freshOpId();
  await h.service.create({ name: "stuck" }, opId);
  while (!h.host.calls.includes("ssh.waitReady")) await new Promise((r) => setTimeout(r, 5));
  await assert.rejects(h.service.delete("stuck", false, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "conflict");
  const t0 = Date.now();
  await h.service.delete("stuck", true, freshOpId());
  await h.service.idle();
  assert.ok(Date.now() - t0 < 5_000);
  assert.deepEqual([...h.host.live], []);
  assert.equal(h.vms.getByName("stuck"), undefined);
  assert.equal(h.ops.get(opId)?.state, "failed");
});

void test("an op id can only start one operation", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const opId = freshOpId();
  await h.service.create({ name: "first" }, opId);
  await assert.rejects(h.service.create({ name: "second" }, opId), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /fresh op id/.test(e.message));
  await h.service.idle();
  assert.equal(h.vms.getByName("second"), undefined);
});

void test("reconcile after a daemon restart: live VMs get DNS back, dead ones are stopped, interrupted operations are unwound", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const live = await createAndWait(h, { name: "live" });
  const dead = await createAndWait(h, { name: "dead" });
  const mid = await createAndWait(h, { name: "mid" });
  const booting = await createAndWait(h, { name: "booting" });
  h.vms.setState(mid.id, "creating");
  h.vms.setState(booting.id, "starting");
  // The DNS table is in memory: a new daemon starts with none.
  for (const n of ["live", "dead", "mid", "booting"]) h.host.live.delete(`dns:${n}`);
  (h.env.deps.vmm as { isAlive: VmmDeps["isAlive"] }).isAlive = (handle) => Promise.resolve(handle["vmId"] === live.id || handle["vmId"] === mid.id || handle["vmId"] === booting.id);
  const r = await h.service.reconcile(freshOpId());
  assert.deepEqual(r, { adopted: ["live"], stopped: ["dead"], interrupted: ["mid", "booting"], failed: [], orphans: [], unchecked: [] });
  assert.ok(h.host.live.has("dns:live"));
  assert.ok(!h.host.live.has(`tap:${dead.id}`));
  assert.equal(h.vms.getById(dead.id)?.state, "stopped");
  assert.match(h.vms.getById(dead.id)?.lastError ?? "", /VMM exited while the daemon was down/);
  // The interrupted create leaves nothing at all; the interrupted start ends stopped, keeping its disks.
  assert.equal(h.vms.getById(mid.id), undefined);
  assert.deepEqual([...h.host.live].filter((x) => x.endsWith(mid.id)), [], "nothing of the interrupted create is left");
  assert.equal(h.vms.getById(booting.id)?.state, "stopped");
  assert.match(h.vms.getById(booting.id)?.lastError ?? "", /restarted while this VM was starting; it was stopped at start-up: start it again/);
  assert.ok(!h.host.live.has(`vmm:${booting.id}`) && h.host.live.has(`work:${booting.id}`));
  assert.equal(h.vms.getById(live.id)?.state, "running");
});

void test("a liveness check that errors does not crash the daemon or fail the boot", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  h.host.sshDelayMs = 150;
  let checks = 0;
  (h.env.deps.vmm as { isAlive: VmmDeps["isAlive"] }).isAlive = () => { checks++; return Promise.reject(new Error("helper unreachable")); };
  const { name } = await createAndWait(h, { name: "shaky" });
  assert.ok(checks >= 2, `checked ${checks} times`);
  assert.equal(h.vms.getByName(name)?.state, "running");
});

void test("known_hosts never keeps a key of a VM whose create failed while others were being created", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  // Fail every third create at the last step, so pin-host-key of others interleaves with the failures' undo.
  let n = 0;
  const publish = h.env.deps.dns.publish.bind(h.env.deps.dns);
  (h.env.deps.dns as { publish: typeof publish }).publish = async (name, ip, opId) => {
    await new Promise((r) => setTimeout(r, 5));
    if (++n % 3 === 0) throw new Error("dns down");
    return publish(name, ip, opId);
  };
  await Promise.all(Array.from({ length: 9 }, () => h.service.create({}, freshOpId())));
  await h.service.idle();
  const running = h.vms.list().filter((v) => v.state === "running");
  assert.equal(running.length, 6);
  const lines = readFileSync(state.knownHosts(h.dir), "utf8").trim().split("\n");
  assert.deepEqual(lines.map((l) => l.split(" ")[0]).sort(), running.map((v) => `${v.name}.vm,${v.handles.ip ?? ""}`).sort());
});

void test("reconcile after a host reboot: running VMs become stopped without touching the recorded pid, keep IP and disks, and start again", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const vm = await createAndWait(h, { name: "survivor" });
  const before = h.vms.getById(vm.id);
  assert.equal(before?.handles.boot_id, "boot-1", "the boot id is recorded with the VMM's pid");
  // A new boot: the recorded pid now names an unrelated process that looks alive.
  (h.env as { bootId: string }).bootId = "boot-2";
  (h.env.deps.vmm as { isAlive: VmmDeps["isAlive"] }).isAlive = () => Promise.resolve(true);
  h.host.live.delete("dns:survivor");
  h.host.calls.length = 0;
  const r = await h.service.reconcile(freshOpId());
  assert.deepEqual(r, { adopted: [], stopped: ["survivor"], interrupted: [], failed: [], orphans: [], unchecked: [] });
  assert.ok(!h.host.calls.includes("vmm.kill") && !h.host.calls.includes("vmm.stop"), `the stale pid was signalled: ${h.host.calls.join(", ")}`);
  const after = h.vms.getById(vm.id);
  assert.equal(after?.state, "stopped");
  assert.match(after?.lastError ?? "", /host rebooted since this VM started; start it again with "banger vm start survivor"/);
  assert.equal(after?.handles.pid, undefined);
  assert.equal(after?.handles.boot_id, undefined);
  assert.equal(after?.handles.ip, before?.handles.ip, "the lease is kept");
  assert.equal(after?.handles.work_disk, before?.handles.work_disk, "the work disk is kept");
  await h.service.start("survivor", freshOpId());
  await h.service.idle();
  const restarted = h.vms.getById(vm.id);
  assert.equal(restarted?.state, "running");
  assert.equal(restarted?.handles.ip, before?.handles.ip, "same IP after start");
  assert.equal(restarted?.handles.boot_id, "boot-2");
});

void test("a VMM that exits on its own stops its VM at once: reason recorded, tap/NAT/DNS released, lease and disks kept; vm start works", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const vm = await createAndWait(h, { name: "crashy" });
  const before = h.vms.getById(vm.id);
  const exited = h.host.exitWatchers.get(vm.id);
  assert.ok(exited !== undefined, "a running VM's VMM is watched");
  writeFileSync(before?.handles.console_log ?? "", "Linux version 6.1\nreboot: Power down\n");
  h.host.calls.length = 0;
  exited();
  await h.service.idle();
  const after = h.vms.getById(vm.id);
  assert.equal(after?.state, "stopped");
  assert.match(after?.lastError ?? "", /the VMM \(pid 4242\) exited on its own/);
  assert.match(after?.lastError ?? "", /reboot: Power down/, "the console's last lines say why");
  assert.ok(!h.host.live.has(`tap:${vm.id}`) && !h.host.live.has("dns:crashy"), `released: ${[...h.host.live].join(", ")}`);
  assert.equal(after?.handles.ip, before?.handles.ip, "lease kept");
  assert.ok(h.host.live.has(`work:${vm.id}`), "work disk kept");
  await h.service.start("crashy", freshOpId());
  await h.service.idle();
  assert.equal(h.vms.getById(vm.id)?.state, "running");
  assert.equal(h.vms.getById(vm.id)?.handles.ip, before?.handles.ip);
});

void test("the exit of a VMM that banger itself stopped is not taken for a crash", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const vm = await createAndWait(h, { name: "calm" });
  const exited = h.host.exitWatchers.get(vm.id);
  await h.service.stop("calm", false, freshOpId());
  exited?.();
  await h.service.idle();
  assert.equal(h.vms.getById(vm.id)?.state, "stopped");
  assert.equal(h.vms.getById(vm.id)?.lastError, null);
});

void test("reconcile re-adopts a running VMM its record lost or mis-recorded, found by identity, and never stops it", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const lost = await createAndWait(h, { name: "lost" });
  const wrong = await createAndWait(h, { name: "wrong" });
  await h.env.handles.save(lost.id, { pid: undefined });
  await h.env.handles.save(wrong.id, { pid: 1 });
  (h.env.deps.vmm as { isAlive: VmmDeps["isAlive"] }).isAlive = () => Promise.resolve(false);
  for (const [vm, pid] of [[lost, 5001], [wrong, 5002]] as const) {
    h.host.foundVmms.set(vm.id, { kind: "qemu", vmId: vm.id, pid, controlSocket: `/run/x/${vm.id.slice(0, 12)}/qmp.sock`, pidFile: "/run/x/vmm.pid" });
  }
  h.host.calls.length = 0;
  const r = await h.service.reconcile(freshOpId());
  assert.deepEqual(r.adopted.sort(), ["lost", "wrong"]);
  assert.deepEqual(r.stopped, []);
  assert.ok(!h.host.calls.some((c) => c.startsWith("vmm.")), `no VMM was stopped: ${h.host.calls.join(", ")}`);
  assert.equal(h.vms.getById(lost.id)?.handles.pid, 5001);
  assert.equal(h.vms.getById(wrong.id)?.handles.pid, 5002);
  assert.equal(h.vms.getById(wrong.id)?.state, "running");
  assert.ok(h.host.exitWatchers.has(lost.id), "re-adopted VMMs are watched for exit");
});

void test("a create that fails because the root helper died is unwound by itself once the helper answers again", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const down = new RpcError("unavailable", "nothing is listening on /run/banger-root/helper.sock");
  h.host.failWith.set("vmm.launch", down);
  h.host.failWith.set("network.detach", down);
  const { vm } = await h.service.create({ name: "orphan" }, freshOpId());
  await h.service.idle();
  const failed = h.vms.getById(vm.id);
  assert.equal(failed?.state, "error", "the helper could not undo the tap: the VM is kept on record");
  assert.ok(h.host.live.has(`tap:${vm.id}`));
  // The helper is back: the next retry releases everything and the VM is gone.
  h.host.failWith.clear();
  await retriedUntil(h, () => h.vms.getById(vm.id) === undefined);
  assert.equal(h.vms.getById(vm.id), undefined, "the failed create was unwound without anyone running vm rm");
  assert.deepEqual([...h.host.live].filter((x) => x.endsWith(vm.id)), [], "nothing of it is left");
});

void test("a stop asked for while the root helper is down fails at once, typed, and is finished once the helper answers again", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const vm = await createAndWait(h, { name: "later" });
  h.host.failWith.set("vmm.stop", new RpcError("unavailable", "nothing is listening on /run/banger-root/helper.sock"));
  await assert.rejects(h.service.stop("later", false, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "unavailable" && /finishes stopping later once it is back/.test(e.message));
  assert.equal(h.vms.getById(vm.id)?.state, "error");
  h.host.failWith.clear();
  await retriedUntil(h, () => h.vms.getById(vm.id)?.state === "stopped");
  assert.equal(h.vms.getById(vm.id)?.state, "stopped");
  assert.ok(!h.host.live.has(`vmm:${vm.id}`) && !h.host.live.has(`tap:${vm.id}`));
});

void test("a delete asked for while the root helper is down keeps disks and lease, fails typed, and is finished once the helper answers again", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const vm = await createAndWait(h, { name: "doomed" });
  h.host.failWith.set("vmm.kill", new RpcError("unavailable", "nothing is listening on /run/banger-root/helper.sock"));
  await assert.rejects(h.service.delete("doomed", true, freshOpId()), (e: unknown) => e instanceof RpcError && e.code === "unavailable" && /finishes deleting doomed once it is back/.test(e.message));
  // The VMM may still run: its address must not go to another VM, nor its disks away under it.
  assert.ok(h.host.live.has(`lease:${vm.id}`) && h.host.live.has(`work:${vm.id}`), [...h.host.live].join(", "));
  h.host.failWith.clear();
  await retriedUntil(h, () => h.vms.getById(vm.id) === undefined);
  assert.equal(h.vms.getById(vm.id), undefined, "the delete was finished without anyone running vm rm again");
  assert.deepEqual([...h.host.live].filter((x) => x.endsWith(vm.id) || x.endsWith("doomed")), [], "nothing of it is left");
});

void test("a start whose launch the root helper's death cut off stops the VMM it may have spawned, found by identity", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const vm = await createAndWait(h, { name: "cutoff" });
  await h.service.stop("cutoff", true, freshOpId());
  h.host.failWith.set("vmm.launch", new RpcError("unavailable", "/run/banger-root/helper.sock closed the connection without answering"));
  // The helper spawned the VMM and died before answering: the pid never reached the record.
  h.host.foundVmms.set(vm.id, { kind: "qemu", vmId: vm.id, pid: 5003, controlSocket: `/run/x/${vm.id.slice(0, 12)}/qmp.sock`, pidFile: "/run/x/vmm.pid" });
  h.host.calls.length = 0;
  await h.service.start("cutoff", freshOpId());
  await h.service.idle();
  assert.ok(h.host.calls.includes("vmm.kill"), `the spawned VMM was stopped: ${h.host.calls.join(", ")}`);
  assert.equal(h.vms.getById(vm.id)?.state, "stopped");
  assert.equal(h.vms.getById(vm.id)?.handles.pid, undefined);
});
