import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { installFiles, installLayout, installRootFromEnv } from "../../../src/install/layout.js";
import { InstallMetadataError, readInstallMetadata, writeInstallMetadata, type InstallMetadata } from "../../../src/install/metadata.js";
import { resolveLayout, SYSTEM_CONFIG_FILE, SYSTEM_STATE_DIR } from "../../../src/paths/paths.js";

void test("the host layout: versioned code under /usr/local/lib/banger, /etc/banger, the system dirs", () => {
  const l = installLayout();
  assert.equal(l.currentLink, "/usr/local/lib/banger/current");
  assert.equal(installFiles.versionDir(l, "0.2.0"), "/usr/local/lib/banger/0.2.0");
  assert.equal(l.configFile, "/etc/banger/config.toml");
  assert.equal(l.metadataFile, "/etc/banger/install.json");
  assert.equal(l.stateDir, "/var/lib/banger");
  assert.equal(l.daemonSocket, "/run/banger/bangerd.sock");
  assert.equal(l.helperSocket, "/run/banger-root/helper.sock");
  assert.equal(installFiles.serviceBin(l.currentLink, "bangerd-root"), "/usr/local/lib/banger/current/dist/bin/bangerd-root.cjs");
  assert.equal(installFiles.unitFile(l, "bangerd"), "/etc/systemd/system/bangerd.service");
  assert.equal(installFiles.pidFile(l, "bangerd"), "/run/banger-services/bangerd.pid");
  assert.equal(installFiles.logFile(l, "bangerd-root"), "/var/log/banger/bangerd-root.log");
  // One set of paths: the daemon's and helper's system defaults are the installed ones.
  assert.equal(SYSTEM_STATE_DIR, l.stateDir);
  assert.equal(SYSTEM_CONFIG_FILE, l.configFile);
});

void test("a root relocates every path; a relative root is refused", () => {
  const l = installLayout("/tmp/x");
  for (const p of [l.libDir, l.currentLink, l.etcDir, l.configFile, l.metadataFile, l.stateDir, l.runtimeDir, l.daemonSocket, l.helperDir, l.helperSocket, l.pidDir, l.logDir, l.unitDir]) assert.ok(p.startsWith("/tmp/x/"), p);
  assert.throws(() => installLayout("tmp/x"), /absolute/);
  assert.equal(installRootFromEnv({}), "/");
  assert.equal(installRootFromEnv({ BANGER_INSTALL_ROOT: " " }), "/");
  assert.equal(installRootFromEnv({ BANGER_INSTALL_ROOT: "/tmp/x" }), "/tmp/x");
});

function sampleMeta(root: string): InstallMetadata {
  const l = installLayout(root);
  return {
    schema: 1,
    version: "0.1.0",
    mode: "detached",
    owner: { name: "alice", uid: 1000, gid: 1000 },
    node: "/usr/bin/node",
    paths: { root, state_dir: l.stateDir, runtime_dir: l.runtimeDir, config: l.configFile, helper_socket: l.helperSocket, daemon_socket: l.daemonSocket, log_dir: l.logDir, lib_dir: l.libDir },
    network: { bridge: "banger0", cidr: "172.16.90.0/24" },
    installed_at: "2026-12-02T00:00:00.000Z",
  };
}

void test("install.json: written whole, read back; missing is undefined; damage names the file, the key and the fix", (t) => {
  const root = mkdtempSync(join(tmpdir(), "banger-layout-"));
  t.after(() => { rmSync(root, { recursive: true, force: true }); });
  const l = installLayout(root);
  assert.equal(readInstallMetadata(l.metadataFile), undefined);
  mkdirSync(l.etcDir, { recursive: true });
  writeInstallMetadata(l.metadataFile, sampleMeta(root));
  assert.deepEqual(readInstallMetadata(l.metadataFile), sampleMeta(root));
  writeFileSync(l.metadataFile, "{");
  assert.throws(() => readInstallMetadata(l.metadataFile), (e: unknown) => e instanceof InstallMetadataError && e.message.includes(l.metadataFile) && e.message.includes("system install"));
  writeFileSync(l.metadataFile, JSON.stringify({ ...sampleMeta(root), mode: "launchd" }));
  assert.throws(() => readInstallMetadata(l.metadataFile), /mode:/);
  writeFileSync(l.metadataFile, JSON.stringify({ ...sampleMeta(root), version: "../etc" }));
  assert.throws(() => readInstallMetadata(l.metadataFile), /version:/);
  assert.throws(() => { writeInstallMetadata(l.metadataFile, { ...sampleMeta(root), owner: { name: "", uid: -1, gid: 0 } }); });
  assert.match(readFileSync(l.metadataFile, "utf8"), /\.\.\/etc/, "a refused write leaves the old file");
});

void test("resolveLayout: an install's install.json puts CLI, daemon and doctor on its paths; BANGER_* still win", (t) => {
  const root = mkdtempSync(join(tmpdir(), "banger-layout-"));
  t.after(() => { rmSync(root, { recursive: true, force: true }); });
  const env = { BANGER_INSTALL_ROOT: root, HOME: "/home/alice" };
  assert.equal(resolveLayout(env).mode, "user", "not installed: the user layout");
  assert.equal(resolveLayout(env).installRoot, undefined);
  const l = installLayout(root);
  mkdirSync(l.etcDir, { recursive: true });
  writeInstallMetadata(l.metadataFile, sampleMeta(root));
  const got = resolveLayout(env, undefined, 1000);
  assert.deepEqual(got, { mode: "system", stateDir: l.stateDir, runtimeDir: l.runtimeDir, configFile: l.configFile, daemonSocket: l.daemonSocket, helperSocket: l.helperSocket, installRoot: root });
  assert.equal(resolveLayout(env, undefined, 0).stateDir, l.stateDir, "root (and sudo) get the same paths");
  assert.equal(resolveLayout({ ...env, BANGER_STATE_DIR: "/s" }).stateDir, "/s");
});
