import assert from "node:assert/strict";
import { test } from "node:test";
import { installLayout } from "../../../src/install/layout.js";
import type { InstallMetadata } from "../../../src/install/metadata.js";
import { HELPER_CAPABILITIES, renderUnits } from "../../../src/install/units.js";

const layout = installLayout();
const meta: InstallMetadata = {
  schema: 1,
  version: "0.1.0",
  mode: "systemd",
  owner: { name: "alice", uid: 1000, gid: 1001 },
  node: "/usr/bin/node",
  paths: { root: "/", state_dir: layout.stateDir, runtime_dir: layout.runtimeDir, config: layout.configFile, helper_socket: layout.helperSocket, daemon_socket: layout.daemonSocket, log_dir: layout.logDir, lib_dir: layout.libDir },
  network: { bridge: "banger0", cidr: "172.16.90.0/24" },
  installed_at: "2026-12-02T00:00:00.000Z",
};

function props(unit: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of unit.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0 || line.startsWith("[")) continue;
    m.set(line.slice(0, eq), [...(m.get(line.slice(0, eq)) ?? []), line.slice(eq + 1)]);
  }
  return m;
}

void test("bangerd-root.service: root, KillMode=process, the capabilities it uses, root's code and config", () => {
  const p = props(renderUnits(meta, layout)["bangerd-root"]);
  assert.deepEqual(p.get("KillMode"), ["process"], "stopping the helper never kills the VMMs it started");
  assert.equal(p.get("User"), undefined);
  const caps = (p.get("CapabilityBoundingSet")?.[0] ?? "").split(" ");
  for (const c of ["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_MKNOD", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_RESOURCE", "CAP_SYS_CHROOT", "CAP_SETPCAP"]) assert.ok(caps.includes(c), c);
  assert.ok(!caps.includes("CAP_SYS_PTRACE") && !caps.includes("CAP_SYS_MODULE") && !caps.includes("CAP_SYS_BOOT"));
  assert.deepEqual(caps, [...HELPER_CAPABILITIES]);
  assert.deepEqual(p.get("ExecStart"), ["/usr/bin/node /usr/local/lib/banger/current/dist/bin/bangerd-root.cjs --owner 1000 --owner-gid 1001 --state-dir /var/lib/banger --config /etc/banger/config.toml --socket /run/banger-root/helper.sock"]);
  assert.deepEqual(p.get("NoNewPrivileges"), ["yes"]);
  assert.deepEqual(p.get("ProtectSystem"), ["true"], "not full: the helper keeps the /etc/hosts block");
  assert.deepEqual(p.get("WantedBy"), ["multi-user.target"]);
});

void test("bangerd.service: the owner, KillMode=process, no capabilities, the install's paths, its runtime dir made by systemd", () => {
  const p = props(renderUnits(meta, layout).bangerd);
  assert.deepEqual(p.get("User"), ["alice"]);
  assert.deepEqual(p.get("Group"), ["1001"]);
  assert.deepEqual(p.get("KillMode"), ["process"]);
  assert.deepEqual(p.get("CapabilityBoundingSet"), [""]);
  assert.deepEqual(p.get("ExecStart"), ["/usr/bin/node /usr/local/lib/banger/current/dist/bin/bangerd.cjs --system"]);
  const env = p.get("Environment") ?? [];
  for (const e of ["BANGER_STATE_DIR=/var/lib/banger", "BANGER_RUNTIME_DIR=/run/banger", "BANGER_CONFIG=/etc/banger/config.toml", "BANGER_SOCKET=/run/banger/bangerd.sock", "BANGER_HELPER_SOCKET=/run/banger-root/helper.sock"]) assert.ok(env.includes(e), e);
  assert.deepEqual(p.get("RuntimeDirectory"), ["banger"]);
  assert.deepEqual(p.get("RuntimeDirectoryMode"), ["0700"]);
  assert.deepEqual(p.get("RuntimeDirectoryPreserve"), ["yes"]);
  assert.ok((p.get("After")?.[0] ?? "").includes("bangerd-root.service"));
});

void test("a path with a space stays one ExecStart word; a runtime dir outside /run is refused", () => {
  const spaced = renderUnits({ ...meta, paths: { ...meta.paths, state_dir: "/srv/my state" } }, layout)["bangerd-root"];
  assert.match(spaced, /--state-dir "\/srv\/my state" /);
  assert.throws(() => renderUnits(meta, installLayout("/tmp/x")), /under \/run/);
});
