import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
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

void test("-u for a user the guest cannot resolve fails with 126 and says what to do", () => {
  const r = viaShell(`PATH=/nonexistent; ${remoteExecCommand(["id"], { user: "root" })}`);
  assert.equal(r.code, 126);
  assert.match(r.stderr, /no user root in the VM; create it or pick another with -u/);
});
