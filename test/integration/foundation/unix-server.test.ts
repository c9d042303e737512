import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { chmodSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { z } from "zod";
import { defineMethod } from "../../../src/rpc/descriptor.js";
import { Dispatcher, implement } from "../../../src/rpc/dispatcher.js";
import { serveUnix } from "../../../src/rpc/unix-server.js";
import { callMethod } from "../../../src/rpc/unix-client.js";
import { createLogger } from "../../../src/system/log.js";
import type { PeerCred } from "../../../src/system/peercred.js";
import { needsRoot } from "../../helpers/requirements.js";
import { ensureTestUser } from "../../helpers/users.js";

const whoami = defineMethod("test.whoami", z.object({}).strict(), z.object({ uid: z.number(), pid: z.number() }));

function rawExchange(socketPath: string, payload: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    let out = "";
    s.on("data", (d: Buffer) => { out += d.toString("utf8"); });
    s.on("end", () => { resolve(out); });
    s.on("close", () => { resolve(out); });
    s.on("error", (e: NodeJS.ErrnoException) => { if (e.code === "EPIPE" || e.code === "ECONNRESET") resolve(out); else reject(e); });
    s.on("connect", () => { s.end(payload); });
  });
}

/** Runs a tiny client as another uid. Async: the server lives in this very process and must keep answering. */
async function requestAs(uid: number, gid: number, socketPath: string): Promise<string> {
  const client = `const s=require("net").connect(process.argv[1]);let o="",err="";s.on("data",d=>o+=d);s.on("error",e=>{err=e.code;});s.on("close",()=>console.log(o.trim()||"ERR "+err));s.on("connect",()=>s.end('{"version":1,"method":"test.whoami"}\\n'));`;
  const r = await promisify(execFile)(process.execPath, ["-e", client, socketPath], { uid, gid, encoding: "utf8", timeout: 10_000 });
  return (r.stdout + r.stderr).trim();
}

function codeOf(line: string): string {
  const r = JSON.parse(line.trim()) as { ok: boolean; error?: { code: string } };
  return r.ok ? "ok" : (r.error?.code ?? "?");
}

async function withServer(fn: (socketPath: string, logs: string[]) => Promise<void>, allowedUids: number[] = []): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bgt-rpc-"));
  const socketPath = join(dir, "s.sock");
  const logs: string[] = [];
  const server = await serveUnix({
    socketPath,
    dispatcher: new Dispatcher<PeerCred>([implement(whoami, (_p, ctx) => ({ uid: ctx.peer.uid, pid: ctx.peer.pid }))]),
    logger: createLogger({ write: (l: string) => logs.push(l) }),
    allowedUids,
    maxRequestBytes: 64 * 1024,
  });
  try {
    await fn(socketPath, logs);
  } finally {
    await new Promise<void>((r) => server.close(() => { r(); }));
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the socket is 0600 and the peer's real credentials reach the handler", async () => {
  await withServer(async (socketPath) => {
    const { statSync } = await import("node:fs");
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
    const me = await callMethod(socketPath, whoami, {});
    assert.equal(me.pid, process.pid);
    assert.equal(me.uid, process.getuid?.());
  });
});

test("garbage, oversize, wrong version and unknown method get typed errors and the server keeps serving", async () => {
  await withServer(async (socketPath, logs) => {
    const cases: [string | Buffer, string][] = [
      ["this is not json\n", "bad_request"],
      [Buffer.from([0xff, 0xfe, 0x00, 0x0a]), "bad_request"],
      ["{\"version\":1}\n", "bad_request"],
      ["{\"version\":99,\"method\":\"test.whoami\"}\n", "bad_version"],
      ["{\"version\":1,\"method\":\"nope.nothing\"}\n", "unknown_method"],
      ["{\"version\":1,\"method\":\"test.whoami\",\"params\":{\"x\":1}}\n", "bad_params"],
      ["{\"version\":1,\"method\":\"test.whoami\"}", "ok"],
    ];
    for (const [payload, code] of cases) {
      assert.equal(codeOf(await rawExchange(socketPath, payload)), code, `payload ${JSON.stringify(payload.toString())}`);
      assert.equal((await callMethod(socketPath, whoami, {})).pid, process.pid, "still serving");
    }
    // 4 MiB with no newline against a 64 KiB cap: refused early, without reading it all.
    const huge = Buffer.alloc(4 * 1024 * 1024, 0x61);
    const reply = await rawExchange(socketPath, huge);
    assert.equal(codeOf(reply.split("\n")[0] ?? ""), "bad_request");
    assert.match(reply, /exceeds 65536 bytes/);
    assert.equal((await callMethod(socketPath, whoami, {})).pid, process.pid, "still serving after oversize");
    assert.ok(logs.every((l) => (JSON.parse(l) as { op_id?: string }).op_id?.startsWith("op-")), "every log line has an op id");
  });
});

test("an empty connection is closed quietly", async () => {
  await withServer(async (socketPath) => {
    assert.equal(await rawExchange(socketPath, ""), "");
  });
});

test("a different non-root uid is refused: by file mode, and by SO_PEERCRED when the mode is loosened", { skip: needsRoot() }, async () => {
  const user = await ensureTestUser();
  await withServer(async (socketPath) => {
    const runAs = (uid: number, gid: number): Promise<string> => requestAs(uid, gid, socketPath);
    chmodSync(join(socketPath, ".."), 0o755);
    assert.match(await runAs(user.uid, user.gid), /ERR EACCES/);
    chmodSync(socketPath, 0o666);
    assert.equal(codeOf(await runAs(user.uid, user.gid)), "unauthorized");
    assert.equal(codeOf(await runAs(65534, 65534)), "unauthorized");
  }, []);
});

test("the owner uid is allowed when listed", { skip: needsRoot() }, async () => {
  const user = await ensureTestUser();
  await withServer(async (socketPath) => {
    chmodSync(join(socketPath, ".."), 0o755);
    chownSync(socketPath, user.uid, user.gid);
    const resp = JSON.parse(await requestAs(user.uid, user.gid, socketPath)) as { ok: boolean; result: { uid: number } };
    assert.equal(resp.ok, true);
    assert.equal(resp.result.uid, user.uid);
  }, [(await ensureTestUser()).uid]);
});
