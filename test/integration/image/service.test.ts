import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { configSchema } from "../../../src/config/schema.js";
import type { DaemonEnv } from "../../../src/daemon/env.js";
import type { HelperClient } from "../../../src/daemon/helper-client.js";
import { ImageService } from "../../../src/daemon/methods/image.js";
import { findKernel } from "../../../src/image/host-kernel.js";
import { resolveLayout, state } from "../../../src/paths/paths.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { openDatabase } from "../../../src/state/database.js";
import { OperationRepository } from "../../../src/state/operations.js";
import { silentLogger } from "../../../src/system/log.js";
import { systemRunner } from "../../../src/system/runner.js";
import { requires } from "../../helpers/requirements.js";
import { tinyImageSkip } from "../../helpers/tiny-image.js";

let hostKernel = false;
try { await findKernel("/"); hostKernel = true; } catch { hostKernel = false; }
const skip = requires(tinyImageSkip(), hostKernel ? false : "needs linux-image-cloud-amd64");

function setup(t: { after: (fn: () => void) => void }): DaemonEnv {
  const dir = mkdtempSync("/tmp/bgt-img-svc-");
  const db = openDatabase(join(dir, "banger.db"));
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }); });
  const helper: HelperClient = { socketPath: "(none)", call: () => Promise.reject(new Error("image service must not call the root helper")) };
  return { layout: resolveLayout({ BANGER_STATE_DIR: dir, BANGER_RUNTIME_DIR: dir }), config: configSchema.parse({}), db, runner: systemRunner, logger: silentLogger, helper, ownerUid: process.getuid?.() ?? 0, ownerGid: 0 };
}

async function waitOp(env: DaemonEnv, id: string): Promise<NonNullable<ReturnType<OperationRepository["get"]>>> {
  const ops = new OperationRepository(env.db);
  for (let i = 0; i < 600; i++) {
    const op = ops.get(id);
    if (op !== undefined && op.state !== "running") return op;
    await sleep(100);
  }
  throw new Error(`operation ${id} did not finish`);
}

void test("image.build runs as a tracked operation with named steps; list/get/delete work; delete refuses while a VM uses it", { skip, timeout: 120_000 }, async (t) => {
  const env = setup(t);
  const svc = new ImageService(env);
  const ref = await svc.startBuild({ from: "busybox" }, "op-bgtimg00001");
  assert.deepEqual(ref, { operation_id: "op-bgtimg00001", image: "tiny" });
  // A second request while it runs follows the same build (two `vm run`s racing on a fresh host); --force cannot.
  assert.deepEqual(await svc.startBuild({ from: "busybox" }, "op-bgtimg00002"), { operation_id: "op-bgtimg00001", image: "tiny" });
  await assert.rejects(svc.startBuild({ from: "busybox", force: true }, "op-bgtimg00005"), (e: unknown) => e instanceof RpcError && e.code === "conflict");
  const op = await waitOp(env, ref.operation_id);
  assert.equal(op.state, "succeeded", op.error ?? "");
  assert.deepEqual(op.steps.map((s) => [s.name, s.state]), [["kernel", "succeeded"], ["initrd", "succeeded"], ["rootfs tree", "succeeded"], ["rootfs.ext4", "succeeded"]]);
  assert.ok(op.steps.every((s) => typeof s.elapsed_ms === "number"));

  const view = svc.view("tiny");
  assert.equal(view.flavor, "busybox");
  assert.equal(view.source, "busybox");
  assert.match(view.kernel_version ?? "", /^\d+\.\d+/);
  assert.ok(view.size_bytes > 10_000_000);
  const info = await svc.get("tiny");
  assert.equal(info?.rootfsPath, join(state.imageDir(env.layout.stateDir, "tiny"), "rootfs.ext4"));

  env.db.prepare("INSERT INTO vms (id, name, image, vcpus, memory_mib, disk_gib, state, vmm, created_at, updated_at) VALUES (?, 'uses-tiny', 'tiny', 1, 128, 1, 'stopped', 'qemu', 'now', 'now')").run("c".repeat(32));
  await assert.rejects(svc.delete("tiny"), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /uses-tiny/.test(e.message));
  assert.deepEqual(svc.view("tiny").used_by, ["uses-tiny"]);
  await stat(state.imageDir(env.layout.stateDir, "tiny"));
  env.db.prepare("DELETE FROM vms").run();
  await svc.delete("tiny");
  assert.equal(await svc.get("tiny"), undefined);
  await assert.rejects(stat(state.imageDir(env.layout.stateDir, "tiny")), { code: "ENOENT" });
  await assert.rejects(svc.delete("tiny"), (e: unknown) => e instanceof RpcError && e.code === "not_found");
});

void test("bad build params are rejected up front as bad_params, without an operation", { skip }, async (t) => {
  const env = setup(t);
  const svc = new ImageService(env);
  await assert.rejects(svc.startBuild({ from: "ubuntu:noble" }, "op-bgtimg00003"), (e: unknown) => e instanceof RpcError && e.code === "bad_params" && /unknown --from/.test(e.message));
  await assert.rejects(svc.startBuild({ from: "/nonexistent" }, "op-bgtimg00004"), (e: unknown) => e instanceof RpcError && e.code === "bad_params");
  assert.equal(new OperationRepository(env.db).get("op-bgtimg00003"), undefined);
});
