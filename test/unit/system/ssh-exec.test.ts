import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parseEnvFlag, remoteExecCommand } from "../../../src/system/ssh-exec.js";

/** The remote string through a local sh, as the guest's login shell would run it. */
function viaShell(remote: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("sh", ["-c", remote], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

void test("exec flags: env, workdir and argv arrive byte for byte through the guest shell", () => {
  const r = viaShell(remoteExecCommand(["sh", "-c", 'echo "$A|$B"; pwd', "x"], { env: [["A", "1"], ["B", "it's $HOME; `id`"]], workdir: "/tmp" }));
  assert.deepEqual(r, { code: 0, stdout: "1|it's $HOME; `id`\n/tmp\n", stderr: "" });
  assert.equal(viaShell(remoteExecCommand(["pwd"], { workdir: "/no/such" })).code, 2);
  assert.throws(() => remoteExecCommand(["pwd"], { workdir: "tmp" }), /absolute path/);
  assert.throws(() => remoteExecCommand(["id"], { user: "x;y" }), /user name or a numeric uid/);
  assert.deepEqual(parseEnvFlag("A=b=c", {}), ["A", "b=c"]);
  assert.deepEqual(parseEnvFlag("HOME", { HOME: "/h" }), ["HOME", "/h"]);
  assert.throws(() => parseEnvFlag("NOPE", {}), /NOPE is not set here; give a value with -e NOPE=VALUE/);
  assert.throws(() => parseEnvFlag("a-b=1", {}), /letters, digits and _/);
});

void test("without a TTY or stdin the command gets no stdin, keeps its exit code, and ends when the connection's stdin does", async () => {
  // The connection's stdin written to but held open: the command reads /dev/null, not it, and its exit code comes back.
  const held = spawn("sh", ["-c", remoteExecCommand(["sh", "-c", "cat; exit 7"], { endWithConnection: true })], { stdio: ["pipe", "pipe", "pipe"] });
  held.stdin.write("not for the command");
  let heldOut = "";
  held.stdout.on("data", (d: Buffer) => { heldOut += d.toString("utf8"); });
  const heldCode = await new Promise<number | null>((res) => held.on("close", (code) => { res(code); }));
  assert.deepEqual([heldCode, heldOut], [7, ""]);
  // stdin held open (the CLI alive): a long command runs; closed (ssh gone): it is ended promptly.
  const child = spawn("sh", ["-c", remoteExecCommand(["sleep", "30"], { endWithConnection: true })], { stdio: ["pipe", "ignore", "ignore"] });
  const t0 = Date.now();
  const done = new Promise<number | null>((res) => child.on("close", (code) => { res(code); }));
  await sleep(300);
  assert.equal(child.exitCode, null, "still running while the connection is open");
  child.stdin.end();
  assert.equal(await done, 143, "TERMed when the stdin closed");
  assert.ok(Date.now() - t0 < 10_000);
});

void test("-u for a user the guest cannot resolve fails with 126 and says what to do", () => {
  const r = viaShell(`PATH=/nonexistent; ${remoteExecCommand(["id"], { user: "root" })}`);
  assert.equal(r.code, 126);
  assert.match(r.stderr, /no user root in the VM; create it or pick another with -u/);
});
