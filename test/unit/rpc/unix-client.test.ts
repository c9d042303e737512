import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { z } from "zod";
import { defineMethod } from "../../../src/rpc/descriptor.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { PROTOCOL_VERSION } from "../../../src/rpc/protocol.js";
import { callMethod, callUnix, unwrapResponse } from "../../../src/rpc/unix-client.js";

/**
 * A one-socket server whose answer to each request is scripted by `reply`
 * (it gets the request line and the socket, and may write anything or nothing).
 */
async function withServer(t: { after(fn: () => void): void }, reply: (line: string, sock: Socket) => void): Promise<{ socket: string; requests: string[] }> {
  const dir = mkdtempSync("/tmp/s2-client-");
  const socket = join(dir, "s.sock");
  const requests: string[] = [];
  const server = createServer((sock) => {
    let buf = "";
    sock.on("data", (d: Buffer) => {
      buf += d.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl === -1) return;
      const line = buf.slice(0, nl);
      requests.push(line);
      reply(line, sock);
    });
    sock.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(socket, r));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { socket, requests };
}

function rpcError(code: string, message: RegExp, opId?: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof RpcError, `not an RpcError: ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    if (opId !== undefined) assert.equal(e.opId, opId);
    return true;
  };
}

const whoami = defineMethod("test.whoami", z.object({}).strict(), z.object({ pid: z.number() }));

void test("sends one versioned request line with method, params and op id; returns the result as sent", async (t) => {
  const s = await withServer(t, (_l, sock) => sock.end(JSON.stringify({ ok: true, result: { pid: 42, extra: ["kept"] } }) + "\n"));
  const r = await callUnix(s.socket, "test.whoami", { a: 1 }, { opId: "op-s2client01" });
  assert.deepEqual(r, { pid: 42, extra: ["kept"] });
  assert.deepEqual(JSON.parse(s.requests[0] ?? ""), { version: PROTOCOL_VERSION, method: "test.whoami", params: { a: 1 }, op_id: "op-s2client01" });
  // The descriptor-typed wrapper sends the descriptor's name and needs no schema at runtime.
  assert.equal((await callMethod(s.socket, whoami, {})).pid, 42);
  const second = JSON.parse(s.requests[1] ?? "") as { method: string; op_id: string };
  assert.equal(second.method, "test.whoami");
  assert.match(second.op_id, /^op-[0-9a-f]{12}$/, "an op id is minted when none is given");
});

void test("a typed error from the server becomes an RpcError with its code, message and op id", async (t) => {
  const s = await withServer(t, (_l, sock) => sock.end(JSON.stringify({ ok: false, error: { code: "not_found", message: "no VM named x", op_id: "op-fromserver1" } }) + "\n"));
  await assert.rejects(callUnix(s.socket, "vm.get", { name: "x" }, { opId: "op-s2client02" }), rpcError("not_found", /^no VM named x$/, "op-fromserver1"));
});

void test("an error code this client does not know is internal, and the server's message survives", async (t) => {
  const s = await withServer(t, (_l, sock) => sock.end(JSON.stringify({ ok: false, error: { code: "rate_limited", message: "slow down" } }) + "\n"));
  await assert.rejects(callUnix(s.socket, "vm.list", {}, { opId: "op-s2client03" }), rpcError("internal", /slow down.*unknown error code "rate_limited"/, "op-s2client03"));
});

void test("malformed and unparseable responses are internal errors naming the socket", async (t) => {
  const bodies: [string, RegExp][] = [
    ["not json at all", /unparseable response from .*s\.sock/],
    ["[1,2]", /malformed response .*not a JSON object/],
    ["42", /malformed response .*not a JSON object/],
    ["{\"result\":{}}", /malformed response .*ok is not a boolean/],
    ["{\"ok\":\"yes\",\"result\":{}}", /malformed response .*ok is not a boolean/],
    ["{\"ok\":false}", /malformed response .*without an error object/],
    ["{\"ok\":false,\"error\":{\"code\":\"not_found\"}}", /malformed response .*error\.message is not a string/],
    ["{\"ok\":false,\"error\":{\"code\":7,\"message\":\"m\"}}", /malformed response .*error\.code is not a string/],
    ["{\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"m\",\"op_id\":5}}", /malformed response .*error\.op_id is not a string/],
  ];
  let i = 0;
  const s = await withServer(t, (_l, sock) => sock.end(`${bodies[i++]?.[0] ?? ""}\n`));
  for (const [body, re] of bodies) {
    await assert.rejects(callUnix(s.socket, "vm.list", {}, { opId: "op-s2client04" }), rpcError("internal", re, "op-s2client04"), body);
  }
});

void test("unwrapResponse: ok without a result is undefined (JSON drops undefined fields)", () => {
  assert.equal(unwrapResponse({ ok: true }, "/x.sock", "op-s2client05"), undefined);
  assert.equal(unwrapResponse({ ok: true, result: null }, "/x.sock", "op-s2client05"), null);
});

void test("a response arriving in many chunks is joined; bytes after the newline are ignored", async (t) => {
  const vms = Array.from({ length: 3000 }, (_, i) => ({ name: `vm-${i}`, note: "é".repeat(20) }));
  const line = JSON.stringify({ ok: true, result: { vms } }) + "\ntrailing garbage";
  const s = await withServer(t, (_l, sock) => {
    // Small writes, spread over ticks, with multi-byte characters split across chunk borders.
    const bytes = Buffer.from(line, "utf8");
    let off = 0;
    const step = (): void => {
      if (off >= bytes.length) { sock.end(); return; }
      sock.write(bytes.subarray(off, off + 4093));
      off += 4093;
      setImmediate(step);
    };
    step();
  });
  assert.ok(Buffer.byteLength(line) > 200_000, "big enough to arrive in many chunks");
  assert.deepEqual(await callUnix(s.socket, "vm.list", {}), { vms });
});

void test("a reply without a newline is accepted at end of stream; an empty close is unavailable", async (t) => {
  let n = 0;
  const s = await withServer(t, (_l, sock) => { sock.end(n++ === 0 ? JSON.stringify({ ok: true, result: 7 }) : ""); });
  assert.equal(await callUnix(s.socket, "m", {}), 7);
  await assert.rejects(callUnix(s.socket, "m", {}, { opId: "op-s2client06" }), rpcError("unavailable", /closed the connection without answering/, "op-s2client06"));
});

void test("no listener is unavailable with a hint; a silent server times out", async (t) => {
  await assert.rejects(callUnix("/tmp/s2-no-such-dir/none.sock", "m", {}, { opId: "op-s2client07" }), rpcError("unavailable", /nothing is listening on \/tmp\/s2-no-such-dir\/none\.sock; is it running\? \(ENOENT\)/, "op-s2client07"));
  const s = await withServer(t, () => undefined);
  const t0 = Date.now();
  await assert.rejects(callUnix(s.socket, "m", {}, { opId: "op-s2client08", timeoutMs: 150 }), rpcError("timeout", /no answer from .* within 150 ms/, "op-s2client08"));
  assert.ok(Date.now() - t0 < 2000);
});
