import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { makeDialStdioCommand } from "../../../src/cli/commands/system/dial-stdio.js";
import type { CliContext } from "../../../src/cli/command.js";
import { resolveLayout } from "../../../src/paths/paths.js";
import { bannerProblem, dialBanner } from "../../../src/rpc/dial-banner.js";
import { PROTOCOL_VERSION } from "../../../src/rpc/protocol.js";
import { sshDial, sshDialArgv } from "../../../src/rpc/ssh-dial.js";
import { callOver } from "../../../src/rpc/unix-client.js";
import { spawnStream } from "../../../src/system/ssh-stream.js";
import { VERSION } from "../../../src/version.js";

void test("the banner: this protocol passes; another protocol, or anything else first, is an error saying both versions or what is in the way", () => {
  assert.equal(dialBanner(), `banger-dial-stdio ${PROTOCOL_VERSION} ${VERSION}\n`);
  assert.equal(bannerProblem(dialBanner().trimEnd(), "box"), undefined);
  assert.equal(bannerProblem(`banger-dial-stdio ${PROTOCOL_VERSION} 9.9.9\r`, "box"), undefined, "same protocol, other version: fine");
  assert.equal(bannerProblem(`banger-dial-stdio ${PROTOCOL_VERSION + 1} 2.0.0`, "box"), `banger 2.0.0 on box speaks protocol ${PROTOCOL_VERSION + 1}, this banger ${VERSION} speaks protocol ${PROTOCOL_VERSION}; install the same banger version on both hosts`);
  assert.match(bannerProblem("Welcome to box!", "box") ?? "", /box did not answer as banger \(its first line was "Welcome to box!"\)/);
});

void test("the dial's ssh argv: batch mode, no TTY, the port, and -- before the destination", () => {
  assert.deepEqual(sshDialArgv({ user: "me", host: "box", port: 2222 }), ["ssh", "-o", "BatchMode=yes", "-p", "2222", "-T", "--", "me@box", "banger", "system", "dial-stdio"]);
  assert.deepEqual(sshDialArgv({ host: "alias" }), ["ssh", "-o", "BatchMode=yes", "-T", "--", "alias", "banger", "system", "dial-stdio"]);
});

/** An ssh stand-in: node running `script` with the request on stdin. */
function fakeSsh(script: string): (argv: readonly string[]) => ReturnType<typeof spawnStream> {
  return () => spawnStream([process.execPath, "-e", script]);
}

void test("an ssh Dial carries a call after the banner, and explains a host without banger, another protocol, and a failed login", async () => {
  const answer = `process.stdout.write(${JSON.stringify(dialBanner())});process.stdin.once("data",(d)=>{const r=JSON.parse(d);process.stdout.write(JSON.stringify({ok:true,result:{echo:r.method,op:r.op_id}})+"\\n");});`;
  const ok = sshDial("prod", { host: "box" }, { spawn: fakeSsh(answer) });
  assert.deepEqual(await callOver(ok, "vm.list", {}, { opId: "op-dial000001" }), { echo: "vm.list", op: "op-dial000001" });
  const call = (script: string): Promise<unknown> => callOver(sshDial("prod", { host: "box" }, { spawn: fakeSsh(script) }), "vm.list", {}, { opId: "op-dial000002", timeoutMs: 20_000 });
  await assert.rejects(call(`process.stderr.write("bash: line 1: banger: command not found\\n");process.exit(127);`),
    /cannot reach context prod \(ssh:\/\/box\): banger is not installed on box .*install banger there/);
  await assert.rejects(call(`process.stdout.write("banger-dial-stdio 99 9.0.0\\n");setTimeout(()=>{},5000);`),
    new RegExp(`banger 9.0.0 on box speaks protocol 99, this banger ${VERSION.replaceAll(".", "\\.")} speaks protocol ${PROTOCOL_VERSION}`));
  await assert.rejects(call(`process.stderr.write("me@box: Permission denied (publickey).\\n");process.exit(255);`),
    /ssh to box failed: me@box: Permission denied \(publickey\)\..*without a prompt/);
  await assert.rejects(call(`process.stdout.write(${JSON.stringify(dialBanner())});process.stderr.write("the daemon is not running\\n");process.exit(1);`),
    /banger on box: the daemon is not running/);
  await assert.rejects(callOver(sshDial("prod", { host: "box" }, { sshBin: "/nonexistent/ssh" }), "vm.list", {}, { opId: "op-dial000003" }), /could not run ssh: .*install the OpenSSH client/);
});

void test("system dial-stdio prints the banner, then relays both ways to the local daemon socket; no daemon is an error on stderr", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banger-dialstdio-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const socket = join(dir, "d.sock");
  const server = createServer({ allowHalfOpen: true }, (c) => {
    let got = "";
    c.on("data", (d: Buffer) => { got += d.toString(); });
    c.on("end", () => { c.end(`got ${got}`); });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  t.after(() => { server.close(); });
  const run = async (): Promise<{ code: number; out: string; err: string }> => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    let out = "";
    let err = "";
    stdout.on("data", (d: Buffer) => { out += d.toString(); });
    const ctx = {
      layout: resolveLayout({ HOME: dir, BANGER_SOCKET: socket, BANGER_STATE_DIR: dir }),
      stdout: { write: () => undefined },
      stderr: { write: (s: string) => { err += s; } },
      env: {},
      opId: "op-dialstdio01",
      dial: { label: "unused", open: () => { throw new Error("unused"); } },
      call: () => Promise.reject(new Error("unused")),
    } satisfies CliContext;
    stdin.end("hello");
    const code = await makeDialStdioCommand(() => ({ stdin, stdout })).run([], ctx);
    return { code, out, err };
  };
  assert.deepEqual(await run(), { code: 0, out: `${dialBanner()}got hello`, err: "" });
  await new Promise<void>((r) => server.close(() => { r(); }));
  const down = await run();
  assert.equal(down.code, 1);
  assert.equal(down.out, dialBanner());
  assert.match(down.err, /the daemon is not running \(nothing listens on .*d\.sock\)/);
});
