import assert from "node:assert/strict";
import { test } from "node:test";
import { chooseMode } from "../../../src/install/mode.js";
import { resolveOwner, type Account } from "../../../src/install/owner.js";
import { parseShow, systemdServices } from "../../../src/install/systemd-services.js";
import { FakeRunner } from "../../../src/system/runner.js";

void test("mode: systemd when PID 1 is systemd; without it, detached only when asked, with a message saying how", () => {
  assert.deepEqual(chooseMode(undefined, true), { mode: "systemd" });
  assert.deepEqual(chooseMode("detached", true), { mode: "detached" });
  assert.deepEqual(chooseMode("detached", false), { mode: "detached" });
  const auto = chooseMode(undefined, false);
  assert.ok("error" in auto && /--mode detached/.test(auto.error) && /not PID 1/.test(auto.error));
  const forced = chooseMode("systemd", false);
  assert.ok("error" in forced && /--mode detached/.test(forced.error));
  const bad = chooseMode("launchd", true);
  assert.ok("error" in bad && /systemd or detached/.test(bad.error));
});

const accounts: Record<string, Account> = { alice: { name: "alice", uid: 1000, gid: 1000, home: "/home/alice" }, root: { name: "root", uid: 0, gid: 0, home: "/root" } };
const lookup = (n: string): Account | undefined => accounts[n];

void test("owner: --owner, else SUDO_USER; each refusal says what to do", () => {
  assert.deepEqual(resolveOwner(undefined, { SUDO_USER: "alice" }, lookup), accounts["alice"]);
  assert.deepEqual(resolveOwner("alice", {}, lookup), accounts["alice"]);
  assert.deepEqual(resolveOwner("root", {}, lookup), accounts["root"], "root only when named");
  const cases: [string | undefined, Record<string, string>, RegExp][] = [
    [undefined, {}, /--owner USER/],
    [undefined, { SUDO_USER: "root" }, /--owner USER/],
    ["bob", {}, /no such user.*useradd/],
    ["a b", {}, /not a user name/],
    ["-x", {}, /not a user name/],
  ];
  for (const [flag, env, re] of cases) {
    const r = resolveOwner(flag, env, lookup);
    assert.ok("error" in r && re.test(r.error), `${String(flag)}: ${JSON.stringify(r)}`);
  }
});

void test("systemd services: systemctl argv per verb; status from `systemctl show`", async () => {
  const runner = new FakeRunner((argv) => argv[1] === "show" ? { stdout: Buffer.from("ActiveState=active\nSubState=running\nMainPID=42\nLoadState=loaded\n") } : undefined);
  const s = systemdServices(runner);
  await s.start("bangerd-root");
  await s.stop("bangerd");
  await s.restart("bangerd");
  await s.reload();
  await s.enable(["bangerd-root", "bangerd"]);
  assert.deepEqual(await s.status("bangerd"), { service: "bangerd", running: true, pid: 42, detail: "active (running)" });
  assert.deepEqual(runner.argvs().slice(0, 5), [
    ["systemctl", "start", "bangerd-root.service"],
    ["systemctl", "stop", "bangerd.service"],
    ["systemctl", "restart", "bangerd.service"],
    ["systemctl", "daemon-reload"],
    ["systemctl", "enable", "bangerd-root.service", "bangerd.service"],
  ]);
  assert.deepEqual(parseShow("MainPID=0\nActiveState=inactive\n"), { MainPID: "0", ActiveState: "inactive" });
  const gone = systemdServices(new FakeRunner(() => ({ stdout: Buffer.from("LoadState=not-found\nActiveState=inactive\nMainPID=0\n") })));
  assert.deepEqual(await gone.status("bangerd"), { service: "bangerd", running: false, detail: "unit not installed" });
});
