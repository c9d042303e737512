import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { BROKEN_PIPE_EXIT_CODE, exitOnBrokenPipe } from "../../../src/cli/broken-pipe.js";

function errnoError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`write ${code}`), { code });
}

void test("EPIPE on stdout exits with the broken-pipe code; other stream errors stay loud", () => {
  const stream = new EventEmitter();
  const exits: number[] = [];
  exitOnBrokenPipe(stream, (code) => { exits.push(code); });
  stream.emit("error", errnoError("EPIPE"));
  assert.deepEqual(exits, [BROKEN_PIPE_EXIT_CODE]);
  assert.equal(BROKEN_PIPE_EXIT_CODE, 128 + 13, "what a shell reports for SIGPIPE");
  assert.throws(() => stream.emit("error", errnoError("EIO")), /write EIO/);
  assert.deepEqual(exits, [BROKEN_PIPE_EXIT_CODE]);
});
