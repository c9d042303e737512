import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { CliContext, Command } from "../../../src/cli/command.js";
import { UsageError } from "../../../src/cli/command.js";
import { imageListCommand } from "../../../src/cli/commands/image/list.js";
import { imageRmCommand } from "../../../src/cli/commands/image/rm.js";
import { imageShowCommand } from "../../../src/cli/commands/image/show.js";
import { imageBuildCommand } from "../../../src/cli/commands/image/build.js";
import { configSchema } from "../../../src/config/schema.js";
import type { DaemonEnv } from "../../../src/daemon/env.js";
import { imageMethods } from "../../../src/daemon/methods/image.js";
import { resolveLayout } from "../../../src/paths/paths.js";
import { Dispatcher } from "../../../src/rpc/dispatcher.js";
import { PROTOCOL_VERSION } from "../../../src/rpc/envelope.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { openDatabase } from "../../../src/state/database.js";
import { ImageRepository } from "../../../src/state/images.js";
import { silentLogger } from "../../../src/system/log.js";
import type { PeerCred } from "../../../src/system/peercred.js";
import { FakeRunner } from "../../../src/system/runner.js";

/** The image CLI against the real image methods and schemas, in memory (no builds run here). */
function harness(t: { after: (fn: () => void) => void }): { run: (cmd: Command, args: string[]) => Promise<number>; out: () => string; repo: ImageRepository; env: DaemonEnv } {
  const dir = mkdtempSync(join(tmpdir(), "bgt-img-cli-"));
  const db = openDatabase(join(dir, "banger.db"));
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }); });
  const env: DaemonEnv = {
    layout: resolveLayout({ BANGER_STATE_DIR: dir, BANGER_RUNTIME_DIR: dir }), config: configSchema.parse({}), db, runner: new FakeRunner(), logger: silentLogger,
    helper: { socketPath: "(none)", call: () => Promise.reject(new Error("unused")) }, ownerUid: 1000, ownerGid: 1000,
  };
  const dispatcher = new Dispatcher<PeerCred>(imageMethods(env));
  let out = "";
  const ctx: CliContext = {
    layout: env.layout,
    stdout: { write: (s: string) => { out += s; } },
    stderr: { write: () => undefined },
    env: {},
    opId: "op-bgtimgcli01",
    dial: { label: "no daemon in this test", open: () => { throw new Error("no daemon in this test"); } },
    call: async (method, params, _t, opId) => {
      const outcome = await dispatcher.dispatch(JSON.stringify({ version: PROTOCOL_VERSION, method, params, op_id: opId ?? "op-bgtimgcli01" }), { pid: 1, uid: 1000, gid: 1000 });
      if (!outcome.response.ok) throw new RpcError(outcome.response.error.code, outcome.response.error.message);
      // As the real client: the dispatcher already checked the result against its schema.
      return outcome.response.result as never;
    },
  };
  return { run: (cmd, args) => cmd.run(args, ctx), out: () => out, repo: new ImageRepository(db), env };
}

function addImage(repo: ImageRepository, name: string): void {
  repo.upsert({ name, source: "busybox", flavor: "busybox", kernelPath: `/s/images/${name}/vmlinuz`, vmlinuxPath: `/s/images/${name}/vmlinux`, initrdPath: `/s/images/${name}/initrd.img`, rootfsPath: `/s/images/${name}/rootfs.ext4`, kernelVersion: "6.1.0-56-cloud-amd64", sizeBytes: 80 * 1024 * 1024, createdAt: "2026-11-23T13:00:00.000Z" });
}

void test("image ls prints a table (and --json the records); show prints one image", async (t) => {
  const h = harness(t);
  assert.equal(await h.run(imageListCommand, []), 0);
  assert.match(h.out(), /no images; build the default one with: banger image build/);
  addImage(h.repo, "tiny");
  assert.equal(await h.run(imageListCommand, []), 0);
  assert.match(h.out(), /NAME\s+FLAVOR\s+SOURCE\s+KERNEL\s+SIZE\s+CREATED\s+USED BY\ntiny\s+busybox\s+busybox\s+6\.1\.0-56-cloud-amd64\s+80 MiB\s+2026-11-23 13:00:00\s+-\n$/);
  const before = h.out().length;
  assert.equal(await h.run(imageListCommand, ["--json"]), 0);
  const json = JSON.parse(h.out().slice(before)) as { name: string; flavor: string }[];
  assert.deepEqual(json.map((i) => [i.name, i.flavor]), [["tiny", "busybox"]]);
  assert.equal(await h.run(imageShowCommand, ["tiny"]), 0);
  assert.match(h.out(), /rootfs\s+\/s\/images\/tiny\/rootfs\.ext4\n/);
});

void test("image rm refuses while a VM uses the image, and bad invocations are usage errors", async (t) => {
  const h = harness(t);
  addImage(h.repo, "tiny");
  h.env.db.prepare("INSERT INTO vms (id, name, image, vcpus, memory_mib, disk_gib, state, vmm, created_at, updated_at) VALUES (?, 'box', 'tiny', 1, 128, 1, 'stopped', 'qemu', 'now', 'now')").run("d".repeat(32));
  await assert.rejects(h.run(imageRmCommand, ["tiny"]), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /used by VM\(s\) box/.test(e.message));
  await assert.rejects(h.run(imageShowCommand, []), UsageError);
  await assert.rejects(h.run(imageShowCommand, ["nosuch"]), (e: unknown) => e instanceof RpcError && e.code === "not_found");
  await assert.rejects(h.run(imageShowCommand, ["../etc"]), (e: unknown) => e instanceof RpcError && e.code === "bad_params");
  await assert.rejects(h.run(imageBuildCommand, ["--from", "ubuntu:noble", "--name", "x"]), (e: unknown) => e instanceof RpcError && e.code === "bad_params" && /unknown --from/.test(e.message));
  await assert.rejects(h.run(imageBuildCommand, ["--bogus"]), /unknown flag --bogus/);
  h.env.db.prepare("DELETE FROM vms").run();
  assert.equal(await h.run(imageRmCommand, ["tiny"]), 0);
  assert.match(h.out(), /deleted image tiny\n$/);
});
