import assert from "node:assert/strict";
import { test } from "node:test";
import { rootDiskEdits, updateFstab, workDiskEdits, type GuestIdentity } from "../../../src/daemon/vm/guest-files.js";
import { checkVmSize } from "../../../src/daemon/vm/limits.js";
import { checkVmName, generateVmName } from "../../../src/daemon/vm/names.js";
import { KeyedMutex } from "../../../src/daemon/vm/keyed-mutex.js";
import { openDatabase } from "../../../src/state/database.js";
import { OperationRepository } from "../../../src/state/operations.js";
import { DuplicateVmNameError, VmRepository } from "../../../src/state/vms.js";

void test("VM names must be DNS labels, with a reason for each way to get it wrong", () => {
  for (const ok of ["a", "web-1", "x".repeat(63), "0day"]) assert.equal(checkVmName(ok), undefined, ok);
  const cases: [string, RegExp][] = [["", /empty/], ["Web", /upper-case/], ["-a", /starts or ends/], ["a-", /starts or ends/], ["a_b", /characters other than/], ["a.b", /characters other than/], ["x".repeat(64), /64 characters/], ["a\nb", /characters other than/], ["../x", /characters other than/]];
  for (const [bad, why] of cases) assert.match(checkVmName(bad) ?? "", why, JSON.stringify(bad));
});

void test("generated names avoid taken ones, falling back to numbered suffixes", () => {
  const n = generateVmName(new Set());
  assert.equal(checkVmName(n), undefined);
  const always0 = (): number => 0;
  assert.equal(generateVmName(new Set(), always0), "amber-badger");
  assert.equal(generateVmName(new Set(["amber-badger"]), always0), "amber-badger-2");
  assert.equal(generateVmName(new Set(["amber-badger", "amber-badger-2"]), always0), "amber-badger-3");
});

void test("size limits name the flag and the range", () => {
  assert.deepEqual(checkVmSize({ vcpus: 2, memoryMib: 1024, diskGib: 8 }), []);
  assert.equal(checkVmSize({ vcpus: 33, memoryMib: 100, diskGib: 0 }).length, 3);
  assert.match(checkVmSize({ vcpus: 1.5, memoryMib: 256, diskGib: 1 })[0] ?? "", /--vcpus must be an integer/);
  assert.match(checkVmSize({ vcpus: 4, memoryMib: 256, diskGib: 1 }, 2)[0] ?? "", /more than this host's 2 CPUs/);
});

const identity: GuestIdentity = {
  name: "web",
  flavor: "systemd",
  lease: { ip: "172.16.90.7", mac: "02:FC:00:00:00:07", tap: "tap-fc-00000007", cid: 7, prefix: 24, gateway: "172.16.90.1", nameservers: ["9.9.9.9", "1.1.1.1"] },
  hostKey: { private: Buffer.from("-----BEGIN OPENSSH PRIVATE KEY-----\n"), public: "ssh-ed25519 AAAAhost" },
};

void test("systemd flavor gets a networkd file matching the MAC and an OpenSSH host key", () => {
  const files = new Map(rootDiskEdits(identity).files.map((f) => [f.path, f]));
  assert.equal(files.get("/etc/systemd/network/10-banger.network")?.content.toString(), "[Match]\nMACAddress=02:fc:00:00:00:07\n\n[Network]\nAddress=172.16.90.7/24\nGateway=172.16.90.1\nDNS=9.9.9.9\nDNS=1.1.1.1\n");
  assert.equal(files.get("/etc/resolv.conf")?.content.toString(), "nameserver 9.9.9.9\nnameserver 1.1.1.1\n");
  assert.equal(files.get("/etc/hosts")?.content.toString().split("\n")[1], "127.0.1.1 web");
  assert.equal(files.get("/etc/ssh/ssh_host_ed25519_key")?.mode, 0o600);
  assert.equal(files.get("/etc/ssh/ssh_host_ed25519_key.pub")?.mode, 0o644);
  assert.ok([...files.values()].every((f) => f.uid === 0 && f.gid === 0));
  assert.equal(files.has("/etc/banger/network"), false);
});

void test("guest config values with newlines or spaces are refused, not written", () => {
  assert.throws(() => rootDiskEdits({ ...identity, name: "web\nevil" }), /not allowed in guest config/);
  assert.throws(() => rootDiskEdits({ ...identity, lease: { ...identity.lease, nameservers: ["1.1.1.1\nDNS=6.6.6.6"] } }), /not allowed/);
  assert.throws(() => workDiskEdits("ssh-ed25519 AAAA\nssh-ed25519 BBBB evil"), /single ssh-ed25519 line/);
  assert.throws(() => workDiskEdits("command=\"sh\" ssh-ed25519 AAAA"), /single ssh-ed25519 line/);
  assert.deepEqual(workDiskEdits("ssh-ed25519 AAAAinstall banger\n").files.map((f) => [f.path, f.content.toString(), f.mode, f.uid]), [["/.ssh/authorized_keys", "ssh-ed25519 AAAAinstall banger\n", 0o600, 0]]);
});

void test("fstab follows the seed: drops old /home and /var disks, ensures /root, /run and /tmp once", () => {
  assert.equal(updateFstab(""), "/dev/vdb /root ext4 defaults 0 2\ntmpfs /run tmpfs defaults,nodev,nosuid,mode=0755 0 0\ntmpfs /tmp tmpfs defaults,nodev,nosuid,mode=1777 0 0\n");
  const out = updateFstab("proc /proc proc defaults 0 0\n/dev/vdb /home ext4 defaults 0 2\n/dev/vdc /var ext4 defaults 0 2\ntmpfs /tmp tmpfs size=1G 0 0\n");
  assert.equal(out, "proc /proc proc defaults 0 0\ntmpfs /tmp tmpfs size=1G 0 0\n/dev/vdb /root ext4 defaults 0 2\ntmpfs /run tmpfs defaults,nodev,nosuid,mode=0755 0 0\n");
  assert.equal(updateFstab(out), out, "idempotent");
});

void test("the vms repository enforces unique names and merges handles (undefined removes a key)", () => {
  const db = openDatabase(":memory:");
  try {
    db.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('img', 't', '/k', '/r', 1, 'now')").run();
    const vms = new VmRepository(db);
    const base = { image: "img", vcpus: 1, memoryMib: 128, diskGib: 1, vmm: "qemu" };
    vms.insert({ id: "a".repeat(32), name: "x", ...base });
    assert.throws(() => vms.insert({ id: "b".repeat(32), name: "x", ...base }), DuplicateVmNameError);
    vms.updateHandles("a".repeat(32), { pid: 5, ip: "10.0.0.2" });
    const after = vms.updateHandles("a".repeat(32), { pid: undefined, tap: "tap-fc-aaaaaaaa" });
    assert.deepEqual(after.handles, { ip: "10.0.0.2", tap: "tap-fc-aaaaaaaa" });
    assert.deepEqual(vms.getByName("x")?.handles, { ip: "10.0.0.2", tap: "tap-fc-aaaaaaaa" });
    db.prepare("UPDATE vms SET handles = 'not json' WHERE name = 'x'").run();
    assert.deepEqual(vms.getByName("x")?.handles, {}, "a corrupt handles column still lists");
    const ops = new OperationRepository(db);
    ops.insert("op-111111", "vm.create", "x", []);
    assert.equal(ops.failInterrupted("daemon restarted"), 1);
    assert.equal(ops.get("op-111111")?.state, "failed");
    assert.equal(ops.get("op-111111")?.error, "daemon restarted");
  } finally {
    db.close();
  }
});

void test("operation waits answer on the next change, at once when already past or finished, and at the timeout otherwise", async () => {
  const db = openDatabase(":memory:");
  try {
    const ops = new OperationRepository(db);
    // Two repositories on one connection, as the VM and image services have: a change through one wakes the other's waiter.
    const other = new OperationRepository(db);
    const step = { name: "lease", state: "running" as const, started_at: "t", elapsed_ms: 0 };
    const rev0 = ops.insert("op-222222", "vm.create", "x", []).revision;
    const t0 = performance.now();
    const woke = ops.waitForChange("op-222222", rev0, 5_000);
    setTimeout(() => { other.updateSteps("op-222222", [step]); }, 30);
    const seen = await woke;
    assert.ok(performance.now() - t0 < 2_000, "a change wakes the waiter long before its timeout");
    assert.equal(seen?.revision, rev0 + 1);
    assert.equal(seen?.steps[0]?.state, "running");
    assert.equal((await ops.waitForChange("op-222222", rev0, 5_000))?.revision, rev0 + 1, "a client behind the current revision is answered at once");
    const t1 = performance.now();
    assert.equal((await ops.waitForChange("op-222222", rev0 + 1, 50))?.revision, rev0 + 1, "no change: the unchanged view at the timeout");
    assert.ok(performance.now() - t1 >= 45);
    const closing = new AbortController();
    const held = ops.waitForChange("op-222222", rev0 + 1, 5_000, closing.signal);
    closing.abort();
    assert.equal((await held)?.state, "running", "an aborted wait answers with the current view");
    other.finish("op-222222", "succeeded", { result: { ok: 1 } });
    assert.equal((await ops.waitForChange("op-222222", 99, 5_000))?.state, "succeeded", "a finished operation never blocks");
    assert.equal(await ops.waitForChange("op-nothere", 0, 5_000), undefined);
  } finally {
    db.close();
  }
});

void test("operation steps read back as written; a malformed steps column reads as no steps", () => {
  const db = openDatabase(":memory:");
  try {
    const ops = new OperationRepository(db);
    const steps = [
      { name: "lease", state: "succeeded" as const, started_at: "2026-01-01T00:00:00.000Z", elapsed_ms: 3 },
      { name: "clone-root", state: "failed" as const, started_at: "2026-01-01T00:00:00.001Z", elapsed_ms: 5, error: "disk full" },
      { name: "launch-vmm", state: "pending" as const, started_at: null, elapsed_ms: null },
    ];
    ops.insert("op-333333", "vm.create", "x", steps);
    assert.deepEqual(ops.get("op-333333")?.steps, steps);
    for (const bad of ["not json", "{}", "[1]", '[{"name":"a","state":"bogus","started_at":null,"elapsed_ms":null}]', '[{"name":"a","state":"pending","started_at":5,"elapsed_ms":null}]', '[{"name":"a","state":"pending","started_at":null,"elapsed_ms":null,"error":7}]']) {
      db.prepare("UPDATE operations SET steps = ? WHERE id = 'op-333333'").run(bad);
      assert.deepEqual(ops.get("op-333333")?.steps, [], bad);
    }
  } finally {
    db.close();
  }
});

void test("KeyedMutex serialises work per key and lets other keys run", async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  const slow = (tag: string, ms: number) => async (): Promise<void> => { order.push(`${tag}+`); await new Promise((r) => setTimeout(r, ms)); order.push(`${tag}-`); };
  await Promise.all([m.run("a", slow("a1", 30)), m.run("a", slow("a2", 1)), m.run("b", slow("b1", 1))]);
  assert.ok(order.indexOf("a1-") < order.indexOf("a2+"), order.join(","));
  assert.ok(order.indexOf("b1-") < order.indexOf("a1-"), order.join(","));
  await assert.rejects(m.run("a", () => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(await m.run("a", () => Promise.resolve(1)), 1, "a failure releases the key");
});
