import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import { defineMethod } from "../../../src/rpc/descriptor.js";
import { Dispatcher, implement } from "../../../src/rpc/dispatcher.js";
import type { Response } from "../../../src/rpc/envelope.js";
import { RpcError } from "../../../src/rpc/errors.js";

const echo = defineMethod("test.echo", z.object({ text: z.string().max(10) }).strict(), z.object({ text: z.string() }));
const boom = defineMethod("test.boom", z.object({}), z.object({}));
const typed = defineMethod("test.typed", z.object({}), z.object({}));
const liar = defineMethod("test.liar", z.object({}), z.object({ n: z.number() }));

function dispatcher(options: { checkResults?: boolean } = {}): Dispatcher<null> {
  return new Dispatcher<null>([
    implement(echo, (p) => ({ text: p.text })),
    implement(boom, () => { throw new Error("kaput"); }),
    implement(typed, () => { throw new RpcError("not_found", "no such thing"); }),
    implement(liar, () => ({ n: "nope" }) as unknown as { n: number }),
  ], options);
}

async function call(line: string): Promise<Response> {
  return (await dispatcher().dispatch(line, null)).response;
}

function errorOf(r: Response): { code: string; message: string; op_id?: string | undefined } {
  assert.equal(r.ok, false);
  if (r.ok) throw new Error("unreachable");
  return r.error;
}

test("a valid request gets its result", async () => {
  const r = await call(JSON.stringify({ version: 1, method: "test.echo", params: { text: "hi" }, op_id: "op-abcdef123456" }));
  assert.deepEqual(r, { ok: true, result: { text: "hi" } });
});

test("garbage gets bad_request with a minted op id", async () => {
  for (const line of ["", "{", "null", "[1,2]", "\u0000\u0001", "{\"version\":\"1\"}", "42"]) {
    const e = errorOf(await call(line));
    assert.equal(e.code, "bad_request", `for ${JSON.stringify(line)}`);
    assert.match(e.op_id ?? "", /^op-[0-9a-f]{12}$/);
  }
});

test("wrong version gets bad_version and keeps the caller's op id", async () => {
  const e = errorOf(await call(JSON.stringify({ version: 2, method: "test.echo", params: {}, op_id: "op-aaaaaa" })));
  assert.equal(e.code, "bad_version");
  assert.equal(e.op_id, "op-aaaaaa");
});

test("unknown method gets unknown_method", async () => {
  const e = errorOf(await call(JSON.stringify({ version: 1, method: "vm.explode", op_id: "op-bbbbbb" })));
  assert.equal(e.code, "unknown_method");
  assert.equal(e.op_id, "op-bbbbbb");
});

test("params failing the schema get bad_params naming the field", async () => {
  const e1 = errorOf(await call(JSON.stringify({ version: 1, method: "test.echo", params: { text: 5 } })));
  assert.equal(e1.code, "bad_params");
  assert.match(e1.message, /text/);
  const e2 = errorOf(await call(JSON.stringify({ version: 1, method: "test.echo", params: { text: "x", extra: true } })));
  assert.equal(e2.code, "bad_params");
  assert.match(e2.message, /extra/);
});

test("a typed RpcError passes through; anything else becomes internal", async () => {
  assert.equal(errorOf(await call(JSON.stringify({ version: 1, method: "test.typed" }))).code, "not_found");
  const e = errorOf(await call(JSON.stringify({ version: 1, method: "test.boom" })));
  assert.equal(e.code, "internal");
  assert.match(e.message, /kaput/);
});

test("a handler result that violates its schema is reported, not sent", async () => {
  const e = errorOf(await call(JSON.stringify({ version: 1, method: "test.liar" })));
  assert.equal(e.code, "internal");
});

test("with result checks off, results are answered as the handler returned them; params are still checked", async () => {
  const d = dispatcher({ checkResults: false });
  assert.deepEqual((await d.dispatch(JSON.stringify({ version: 1, method: "test.liar" }), null)).response, { ok: true, result: { n: "nope" } });
  assert.equal(errorOf((await d.dispatch(JSON.stringify({ version: 1, method: "test.echo", params: { text: 5 } }), null)).response).code, "bad_params");
});

test("a malformed op id is replaced by a minted one", async () => {
  const e = errorOf(await call(JSON.stringify({ version: 1, method: "nope", op_id: "op-\n; rm" })));
  assert.equal(e.code, "bad_request");
  assert.match(e.op_id ?? "", /^op-[0-9a-f]{12}$/);
});

test("registering a method twice is refused", () => {
  assert.throws(() => new Dispatcher([implement(echo, (p) => p), implement(echo, (p) => p)]), /twice/);
});
