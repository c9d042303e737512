import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { CliContext } from "../../../src/cli/command.js";
import { systemStatusCommand } from "../../../src/cli/commands/system/status.js";
import { installLayout } from "../../../src/install/layout.js";
import { writeInstallMetadata } from "../../../src/install/metadata.js";
import { resolveLayout } from "../../../src/paths/paths.js";
import { RpcError } from "../../../src/rpc/errors.js";

function downCtx(env: Record<string, string>): { ctx: CliContext; out: () => string } {
  let out = "";
  const ctx: CliContext = {
    layout: resolveLayout(env),
    stdout: { write: (s: string) => { out += s; } },
    stderr: { write: () => undefined },
    env,
    opId: "op-status00001",
    dial: { label: "no daemon in this test", open: () => { throw new Error("no daemon in this test"); } },
    call: () => Promise.reject(new RpcError("unavailable", "nothing is listening on /x/bangerd.sock; is it running? (ENOENT)")),
  };
  return { ctx, out: () => out };
}

void test("system status with the daemon down names what fixes it: install from a checkout, restart when installed", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "banger-status-"));
  t.after(() => { rmSync(root, { recursive: true, force: true }); });
  const env = { HOME: "/nonexistent", BANGER_INSTALL_ROOT: root };

  const bare = downCtx(env);
  assert.equal(await systemStatusCommand.run([], bare.ctx), 1);
  assert.match(bare.out(), /not reachable/);
  assert.match(bare.out(), /sudo banger system install/);
  assert.doesNotMatch(bare.out(), /start it with: bangerd/, "never the hint that started a second daemon on other paths");

  const l = installLayout(root);
  mkdirSync(l.etcDir, { recursive: true });
  writeInstallMetadata(l.metadataFile, {
    schema: 1, version: "0.1.0", mode: "detached", owner: { name: "alice", uid: 1000, gid: 1000 }, node: process.execPath,
    paths: { root, state_dir: l.stateDir, runtime_dir: l.runtimeDir, config: l.configFile, helper_socket: l.helperSocket, daemon_socket: l.daemonSocket, log_dir: l.logDir, lib_dir: l.libDir },
    network: { bridge: "banger0", cidr: "172.16.90.0/24" }, installed_at: "2026-12-02T00:00:00.000Z",
  });
  const inst = downCtx(env);
  assert.equal(await systemStatusCommand.run([], inst.ctx), 1);
  assert.match(inst.out(), /installed: +0\.1\.0 \(detached\) for alice/);
  assert.match(inst.out(), /bangerd-root: +NOT running: not started \(no pidfile\)/);
  assert.match(inst.out(), /restart it with: sudo banger system restart/);

  const json = downCtx(env);
  assert.equal(await systemStatusCommand.run(["--json"], json.ctx), 1);
  const doc = JSON.parse(json.out()) as { daemon_reachable: boolean; hint: string; install: { mode: string; services: Record<string, { running: boolean }> }; paths: { state_dir: string } };
  assert.equal(doc.daemon_reachable, false);
  assert.equal(doc.hint, "restart it with: sudo banger system restart");
  assert.equal(doc.install.mode, "detached");
  assert.equal(doc.install.services["bangerd"]?.running, false);
  assert.equal(doc.paths.state_dir, l.stateDir, "the install's paths, with no BANGER_* variable set");
});
