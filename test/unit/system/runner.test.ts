import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

test("the child gets exactly stdio plus extraFds, default signal dispositions, the given env and cwd", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-runner-"));
  try {
    writeFileSync(join(dir, "a"), "first");
    writeFileSync(join(dir, "b"), "second");
    const fa = openSync(join(dir, "a"), "r");
    const fb = openSync(join(dir, "b"), "r");
    try {
      // fds given in "wrong" order: b becomes 3, a becomes 4.
      assert.equal(await runText(systemRunner, ["cat", "/proc/self/fd/3", "/proc/self/fd/4"], { extraFds: [fb, fa] }), "secondfirst");
      // Nothing of the parent's leaks: ls sees 0-2, the two extra fds, its own directory handle (3 or 5),
      // and whatever this test process itself inherited without close-on-exec (child_process passes those on too).
      const seen = async (ls: Promise<string>): Promise<number[]> => (await ls).split("\n").map(Number).filter((fd) => fd > 5);
      const inherited = await seen(Promise.resolve(execFileSync("ls", ["/proc/self/fd"]).toString().trim()));
      const ours = (await runText(systemRunner, ["ls", "/proc/self/fd"], { extraFds: [fa, fb] })).split("\n").map(Number);
      assert.deepEqual(ours.filter((fd) => fd <= 5).sort(), [0, 1, 2, 3, 4, 5]);
      assert.deepEqual(ours.filter((fd) => fd > 5).sort(), inherited.sort(), `unexpected fds in the child: ${ours.join(",")}`);
    } finally {
      closeSync(fa);
      closeSync(fb);
    }
    // Node ignores SIGPIPE and SIGXFSZ; a tool must not inherit that (`yes | head` style pipelines rely on it).
    // Only signals 1-31 are checked: glibc's posix_spawn leaves its two internal signals (32, 33) ignored.
    const status = await runText(systemRunner, ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
    assert.match(status, /^SigBlk:\s+0+\n/);
    assert.equal(BigInt(`0x${/SigIgn:\s+([0-9a-f]+)/.exec(status)?.[1] ?? "ff"}`) & 0x7fffffffn, 0n, status);
    assert.equal(await runText(systemRunner, ["printenv", "BANGER_T"], { env: { BANGER_T: "x y", PATH: process.env["PATH"] ?? "" } }), "x y");
    assert.equal(await runText(systemRunner, ["pwd"], { cwd: dir }), dir);
    const ac = new AbortController();
    const pending = systemRunner.run(["sleep", "5"], { signal: ac.signal });
    ac.abort();
    await assert.rejects(pending, (e: unknown) => e instanceof CommandError && e.signal === "SIGKILL");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("many concurrent runs each get their own output and exit status", async () => {
  const runs = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => runText(systemRunner, ["sh", "-c", `echo ${i}; exit $((${i} % 3))`], { okExitCodes: [1] })));
  runs.forEach((r, i) => {
    if (i % 3 === 2) assert.ok(r.status === "rejected" && r.reason instanceof CommandError && r.reason.exitCode === 2 && r.reason.stdout === `${i}\n`);
    else assert.ok(r.status === "fulfilled" && r.value === String(i), `run ${i}: ${JSON.stringify(r)}`);
  });
});

test("FakeRunner records calls and injects failures", async () => {
  const fake = new FakeRunner((argv) => (argv[0] === "bad" ? new Error("injected") : { stdout: Buffer.from("ok") }));
  assert.equal(await runText(fake, ["good", "x"]), "ok");
  await assert.rejects(fake.run(["bad"]), /injected/);
  assert.deepEqual(fake.argvs(), [["good", "x"], ["bad"]]);
});
