import assert from "node:assert/strict";
import { test } from "node:test";
import { CleanupStack, insertAfter, insertBefore, removeStep, replaceStep, runSteps, StepFailedError, stepNames, type Step, type StepEvent } from "../../../src/daemon/vm/steps.js";

function recorder(): { log: string[]; step: (name: string, opts?: { fail?: boolean; undoFails?: boolean; noUndo?: boolean }) => Step<unknown> } {
  const log: string[] = [];
  return {
    log,
    step: (name, opts = {}) => ({
      name,
      run: () => {
        log.push(`run ${name}`);
        return opts.fail === true ? Promise.reject(new Error(`${name} broke`)) : Promise.resolve();
      },
      ...(opts.noUndo === true ? {} : {
        undo: () => {
          log.push(`undo ${name}`);
          return opts.undoFails === true ? Promise.reject(new Error(`undo of ${name} broke`)) : Promise.resolve();
        },
      }),
    }),
  };
}

void test("runSteps runs every step in order and returns the unrun cleanup stack", async () => {
  const r = recorder();
  const stack = await runSteps([r.step("a"), r.step("b", { noUndo: true }), r.step("c")], undefined);
  assert.deepEqual(r.log, ["run a", "run b", "run c"]);
  assert.equal(stack.size, 2);
  await stack.run();
  assert.deepEqual(r.log.slice(3), ["undo c", "undo a"]);
});

void test("a failing step unwinds completed steps once, in reverse, and not itself", async () => {
  const r = recorder();
  const events: StepEvent[] = [];
  await assert.rejects(runSteps([r.step("a"), r.step("b"), r.step("c", { fail: true }), r.step("d")], undefined, (e) => events.push(e)), (e: unknown) => {
    assert.ok(e instanceof StepFailedError);
    assert.equal(e.step, "c");
    assert.equal(e.cleanupErrors.length, 0);
    assert.match(e.message, /step c failed: c broke/);
    return true;
  });
  assert.deepEqual(r.log, ["run a", "run b", "run c", "undo b", "undo a"]);
  assert.deepEqual(events.map((e) => `${e.step}:${e.kind}`), ["a:started", "a:succeeded", "b:started", "b:succeeded", "c:started", "c:failed", "b:undone", "a:undone"]);
});

void test("undo failures are collected, every undo still runs, all errors are reported", async () => {
  const r = recorder();
  await assert.rejects(runSteps([r.step("a", { undoFails: true }), r.step("b", { undoFails: true }), r.step("c"), r.step("d", { fail: true })], undefined), (e: unknown) => {
    assert.ok(e instanceof StepFailedError);
    assert.equal(e.errors.length, 3);
    assert.equal(e.cleanupErrors.length, 2);
    assert.match(e.message, /undo b: undo of b broke/);
    assert.match(e.message, /undo a: undo of a broke/);
    return true;
  });
  assert.deepEqual(r.log, ["run a", "run b", "run c", "run d", "undo c", "undo b", "undo a"]);
});

void test("CleanupStack runs only once and refuses late registrations", async () => {
  const stack = new CleanupStack();
  let n = 0;
  stack.push("x", () => { n++; return Promise.resolve(); });
  await stack.run();
  await stack.run();
  assert.equal(n, 1);
  assert.throws(() => { stack.push("y", () => Promise.resolve()); }, /already ran/);
});

void test("CleanupStack throws an AggregateError naming each failed undo", async () => {
  const stack = new CleanupStack();
  const order: string[] = [];
  stack.push("one", () => { order.push("one"); return Promise.reject(new Error("e1")); });
  stack.push("two", () => { order.push("two"); return Promise.resolve(); });
  stack.push("three", () => { order.push("three"); return Promise.reject(new Error("e3")); });
  await assert.rejects(stack.run(), (e: unknown) => e instanceof AggregateError && e.errors.length === 2 && /undo three: e3/.test(e.message) && /undo one: e1/.test(e.message));
  assert.deepEqual(order, ["three", "two", "one"]);
});

void test("a throwing progress callback does not fail a step", async () => {
  const r = recorder();
  await runSteps([r.step("a")], undefined, () => { throw new Error("sink down"); });
  assert.deepEqual(r.log, ["run a"]);
});

void test("step lists can be listed and edited without mutating the original", () => {
  const r = recorder();
  const base = [r.step("a"), r.step("c")];
  const withB = insertBefore(base, "c", r.step("b"));
  assert.deepEqual(stepNames(withB), ["a", "b", "c"]);
  assert.deepEqual(stepNames(insertAfter(withB, "c", r.step("d"))), ["a", "b", "c", "d"]);
  assert.deepEqual(stepNames(removeStep(withB, "a")), ["b", "c"]);
  const replaced = replaceStep(withB, "b", r.step("b"));
  assert.equal(replaced.length, 3);
  assert.deepEqual(stepNames(base), ["a", "c"]);
  assert.throws(() => insertBefore(base, "zz", r.step("x")), /no step named zz/);
});

void test("duplicate step names are rejected before anything runs", async () => {
  const r = recorder();
  await assert.rejects(runSteps([r.step("a"), r.step("a")], undefined), /appears twice/);
  assert.deepEqual(r.log, []);
});
