import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME_PAYLOAD, type Frame } from "../../../src/rpc/frames.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

void test("every frame type round-trips, fed whole or one byte at a time", () => {
  const frames: Frame[] = [
    { type: "stdin", data: bytes("in") },
    { type: "stdin-eof" },
    { type: "stdout", data: bytes("out\n") },
    { type: "stderr", data: new Uint8Array([0, 255, 10]) },
    { type: "signal", signal: "TERM" },
    { type: "resize", cols: 132, rows: 43 },
    { type: "exit", status: { code: 7, signal: null } },
    { type: "exit", status: { code: null, signal: "KILL" } },
    { type: "error", code: "not_found", message: "no such file" },
  ];
  const wire = frames.map(encodeFrame);
  const whole = new FrameDecoder().push(Uint8Array.from(wire.flatMap((w) => [...w])));
  assert.deepEqual(whole, frames);
  const d = new FrameDecoder();
  const trickled: Frame[] = [];
  for (const w of wire) for (const b of w) trickled.push(...d.push(new Uint8Array([b])));
  assert.deepEqual(trickled, frames);
  assert.equal(d.buffered, 0);
});

void test("large data is split into frames no bigger than the cap; a longer declared length is refused before buffering it", () => {
  const big = new Uint8Array(MAX_FRAME_PAYLOAD * 2 + 5).map((_, i) => i & 0xff);
  const out = new FrameDecoder().push(encodeFrame({ type: "stdout", data: big }));
  assert.deepEqual(out.map((f) => (f.type === "stdout" ? f.data.length : -1)), [MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD, 5]);
  assert.deepEqual(Uint8Array.from(out.flatMap((f) => (f.type === "stdout" ? [...f.data] : []))), big);
  const huge = new Uint8Array([0x7f, 0xff, 0xff, 0xff, 3]);
  assert.throws(() => new FrameDecoder().push(huge), FrameError);
  assert.throws(() => new FrameDecoder().push(new Uint8Array([0, 0, 0, 0, 3])), /out of range/);
});

void test("malformed payloads are errors; unknown frame types are skipped", () => {
  const raw = (type: number, payload: number[]): Uint8Array => new Uint8Array([0, 0, 0, payload.length + 1, type, ...payload]);
  assert.throws(() => new FrameDecoder().push(raw(5, [...bytes("term")])), /signal/);
  assert.throws(() => new FrameDecoder().push(raw(6, [0, 1])), /resize/);
  assert.throws(() => new FrameDecoder().push(raw(6, [0, 0, 0, 1])), /terminal size/);
  assert.throws(() => new FrameDecoder().push(raw(7, [...bytes('{"code":1.5,"signal":null}')])), /exit/);
  assert.throws(() => new FrameDecoder().push(raw(8, [...bytes("[]")])), /error/);
  assert.throws(() => new FrameDecoder().push(raw(2, [1])), /stdin-eof/);
  assert.deepEqual(new FrameDecoder().push(Uint8Array.from([...raw(99, [1, 2]), ...encodeFrame({ type: "stdin-eof" })])), [{ type: "stdin-eof" }]);
  assert.throws(() => encodeFrame({ type: "signal", signal: "SIG TERM" }), /signal name/);
  assert.throws(() => encodeFrame({ type: "resize", cols: 0, rows: 10 }), /out of range/);
});
