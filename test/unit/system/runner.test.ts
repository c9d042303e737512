import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CommandError, FakeRunner, runText, systemRunner } from "../../../src/system/runner.js";

test("arguments reach the child literally: no shell interprets them", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-runner-"));
  try {
    const canary = join(dir, "canary");
    const evil = ["; rm -rf /", "$(touch " + canary + ")", "`touch " + canary + "`", "a b", "'quoted'", "\"dq\"", "*", "\n", "--flag"];
    const out = await systemRunner.run(["printf", "%s\\0", ...evil]);
    assert.deepEqual(out.stdout.toString("utf8").split("\0").slice(0, -1), evil);
    assert.throws(() => readFileSync(canary), /ENOENT/, "no command substitution happened");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failing command throws CommandError with argv, exit code and stderr", async () => {
  await assert.rejects(systemRunner.run(["ls", "/definitely/not/here"]), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.deepEqual(e.argv, ["ls", "/definitely/not/here"]);
    assert.equal(e.exitCode, 2);
    assert.equal(e.signal, null);
    assert.match(e.stderr, /No such file/);
    assert.match(e.message, /exit code 2/);
    return true;
  });
});

test("a missing binary and a killed child are reported", async () => {
  await assert.rejects(systemRunner.run(["/no/such/binary"]), (e: unknown) => e instanceof CommandError && e.exitCode === null && /failed to start|ENOENT/.test(e.message));
  await assert.rejects(systemRunner.run(["sleep", "5"], { timeoutMs: 100 }), (e: unknown) => e instanceof CommandError && e.signal === "SIGKILL");
});

test("stdin is piped and okExitCodes widen success", async () => {
  assert.equal(await runText(systemRunner, ["cat"], { stdin: "hello" }), "hello");
  await systemRunner.run(["false"], { okExitCodes: [1] });
});

test("FakeRunner records calls and injects failures", async () => {
  const fake = new FakeRunner((argv) => (argv[0] === "bad" ? new Error("injected") : { stdout: Buffer.from("ok") }));
  assert.equal(await runText(fake, ["good", "x"]), "ok");
  await assert.rejects(fake.run(["bad"]), /injected/);
  assert.deepEqual(fake.argvs(), [["good", "x"], ["bad"]]);
});
