import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { configSchema } from "../../../src/config/schema.js";
import type { DaemonEnv } from "../../../src/daemon/env.js";
import type { HelperClient } from "../../../src/daemon/helper-client.js";
import { getLease } from "../../../src/daemon/network/lease.js";
import { networkService } from "../../../src/daemon/network/service.js";
import { resolveLayout } from "../../../src/paths/paths.js";
import type { MethodDescriptor } from "../../../src/rpc/descriptor.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { openDatabase } from "../../../src/state/database.js";
import { silentLogger } from "../../../src/system/log.js";
import { FakeRunner } from "../../../src/system/runner.js";

interface Call { method: string; params: unknown; opId: string }

function setup(t: { after: (fn: () => void) => void }, network: Record<string, unknown> = {}, failOn?: string): { env: DaemonEnv; calls: Call[] } {
  const dir = mkdtempSync(join(tmpdir(), "bgt-net-svc-"));
  const db = openDatabase(join(dir, "banger.db"));
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }); });
  db.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('img', 't', '/k', '/r', 1, 'now')").run();
  for (const id of ["a".repeat(32), "b".repeat(32)]) {
    db.prepare("INSERT INTO vms (id, name, image, vcpus, memory_mib, disk_gib, state, vmm, created_at, updated_at) VALUES (?, ?, 'img', 1, 128, 1, 'stopped', 'qemu', 'now', 'now')").run(id, `vm-${id.slice(0, 4)}`);
  }
  const calls: Call[] = [];
  const helper: HelperClient = {
    socketPath: "(fake)",
    call(d: MethodDescriptor, params: unknown, opId: string): Promise<never> {
      calls.push({ method: d.name, params, opId });
      if (d.name === failOn) return Promise.reject(new RpcError("operation_failed", `${d.name} failed`));
      return Promise.resolve({} as never);
    },
  };
  const config = configSchema.parse({ network: { cidr: "172.16.90.0/24", upstream_dns: ["192.0.2.53"], ...network } });
  const env: DaemonEnv = { layout: resolveLayout({ BANGER_STATE_DIR: dir, BANGER_RUNTIME_DIR: dir }), config, db, runner: new FakeRunner(), logger: silentLogger, helper, ownerUid: 1000, ownerGid: 1000 };
  return { env, calls };
}

void test("lease -> attach -> addNat -> detach: bridge, owner tap, NAT, each with the caller's op id; lease stays until release", async (t) => {
  const { env, calls } = setup(t);
  const svc = networkService(env);
  const vm = "a".repeat(32);
  const lease = await svc.lease(vm, "op-aaaaaa01");
  assert.deepEqual(lease, { ip: "172.16.90.2", mac: "02:aa:aa:aa:aa:aa", tap: "tap-fc-aaaaaaaa", cid: 3, prefix: 24, gateway: "172.16.90.1", nameservers: ["172.16.90.1"] }, "the guest's resolver is banger's DNS on the bridge");
  await svc.attach(vm, lease, "op-aaaaaa02");
  await svc.addNat(vm, lease, "op-aaaaaa02");
  assert.deepEqual(calls.map((c) => [c.method, c.params, c.opId]), [
    // create_tap ensures the bridge itself: no separate round trip.
    ["priv.create_tap", { tap_name: "tap-fc-aaaaaaaa" }, "op-aaaaaa02"],
    ["priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-aaaaaaaa", enable: true }, "op-aaaaaa02"],
  ]);
  calls.length = 0;
  await svc.detach(vm, lease, "op-aaaaaa03");
  assert.deepEqual(calls.map((c) => c.method), ["priv.ensure_nat", "priv.delete_tap"]);
  // Stop/start: detach does not release; the next lease call returns the same identity.
  assert.deepEqual(await svc.lease(vm, "op-aaaaaa04"), lease);
  await svc.release(vm, "op-aaaaaa05");
  assert.equal(getLease(env.db, vm), undefined);
  await svc.release(vm, "op-aaaaaa06");
});

void test("attach and addNat refuse a lease the VM does not hold", async (t) => {
  const { env, calls } = setup(t);
  const svc = networkService(env);
  const lease = await svc.lease("a".repeat(32), "op-aaaaaa01");
  await assert.rejects(svc.attach("b".repeat(32), lease, "op-aaaaaa02"), /does not hold lease/);
  await assert.rejects(svc.addNat("b".repeat(32), lease, "op-aaaaaa02"), /does not hold lease/);
  assert.deepEqual(calls, []);
});

void test("a failed addNat takes down what did land, and reports both failures", async (t) => {
  const { env, calls } = setup(t, {}, "priv.ensure_nat");
  const svc = networkService(env);
  const lease = await svc.lease("a".repeat(32), "op-aaaaaa01");
  // The fake fails every call of that method, so the cleanup fails too and is reported beside it.
  await assert.rejects(svc.addNat("a".repeat(32), lease, "op-aaaaaa02"), (e: unknown) => e instanceof AggregateError && e.errors[0] instanceof RpcError && e.message.startsWith("adding NAT for 172.16.90.2 (tap-fc-aaaaaaaa) failed: priv.ensure_nat failed"));
  assert.deepEqual(calls.map((c) => [c.method, (c.params as { enable?: boolean }).enable]), [["priv.ensure_nat", true], ["priv.ensure_nat", false]]);
});

void test("detach is collect-and-continue: a NAT failure still deletes the tap, and the failure is reported", async (t) => {
  const { env, calls } = setup(t, {}, "priv.ensure_nat");
  const svc = networkService(env);
  const lease = await svc.lease("a".repeat(32), "op-aaaaaa01");
  await assert.rejects(svc.detach("a".repeat(32), lease, "op-aaaaaa02"), (e: unknown) => e instanceof AggregateError && e.errors.length === 1 && /tap-fc-aaaaaaaa/.test(e.message));
  assert.deepEqual(calls.map((c) => c.method), ["priv.ensure_nat", "priv.delete_tap"]);
});

void test("nat = false: no NAT calls; tap pool: pool taps are reused, not created per VM, and survive detach", async (t) => {
  const { env, calls } = setup(t, { nat: false, tap_pool_size: 2 });
  const existing = new Set<string>();
  const svc = networkService(env, { linkExists: (n) => existing.has(n) });
  assert.deepEqual(await svc.ensureTapPool("op-aaaaaa01"), ["tap-pool-0", "tap-pool-1"]);
  existing.add("tap-pool-0").add("tap-pool-1");
  assert.deepEqual(await svc.ensureTapPool("op-aaaaaa02"), [], "idempotent");
  calls.length = 0;
  const lease = await svc.lease("a".repeat(32), "op-aaaaaa03");
  assert.equal(lease.tap, "tap-pool-0");
  await svc.attach("a".repeat(32), lease, "op-aaaaaa04");
  await svc.addNat("a".repeat(32), lease, "op-aaaaaa04");
  await svc.detach("a".repeat(32), lease, "op-aaaaaa05");
  assert.deepEqual(calls.map((c) => c.method), ["priv.ensure_bridge"], "existing pool tap: no create, no NAT, no delete");
});

void test("guests get the upstream resolvers themselves when banger's DNS cannot reach them (NAT off, or dns_listen on port 0)", async (t) => {
  for (const network of [{ nat: false }, { dns_listen: "127.0.0.1:0" }]) {
    const { env } = setup(t, network);
    assert.deepEqual((await networkService(env).lease("a".repeat(32), "op-cccccc01")).nameservers, ["192.0.2.53"], JSON.stringify(network));
  }
});
