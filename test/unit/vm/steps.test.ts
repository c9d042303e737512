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

/** A step that finishes after `ms`, logging when it starts and ends, so overlap is visible. */
function slow(log: string[], name: string, ms: number, opts: { fail?: boolean } = {}): Step<unknown> {
  return {
    name,
    run: async () => {
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`end ${name}`);
      if (opts.fail === true) throw new Error(`${name} broke`);
    },
    undo: () => {
      log.push(`undo ${name}`);
      return Promise.resolve();
    },
  };
}

void test("a group's members run concurrently and the list waits for all of them", async () => {
  const log: string[] = [];
  const t0 = performance.now();
  const stack = await runSteps([slow(log, "a", 0), { name: "g", parallel: [slow(log, "b", 120), slow(log, "c", 120), slow(log, "d", 120)] }, slow(log, "e", 0)], undefined);
  assert.ok(performance.now() - t0 < 330, "three 120 ms members overlap instead of taking 360 ms");
  assert.deepEqual(log.slice(0, 5), ["start a", "end a", "start b", "start c", "start d"]);
  assert.deepEqual(log.slice(-2), ["start e", "end e"], "the next step starts only after every member ended");
  assert.deepEqual(stepNames([slow(log, "a", 0), { name: "g", parallel: [slow(log, "b", 0), slow(log, "c", 0)] }]), ["a", "b", "c"]);
  log.length = 0;
  await stack.run();
  assert.deepEqual(log, ["undo e", "undo d", "undo c", "undo b", "undo a"], "members unwind in reverse list order, whatever order they finished in");
});

void test("a failing member waits for its siblings, then unwinds them and every earlier step; sibling failures are reported too", async () => {
  const log: string[] = [];
  const events: StepEvent[] = [];
  const steps = [slow(log, "a", 0), { name: "g", parallel: [slow(log, "b", 10, { fail: true }), slow(log, "c", 80), slow(log, "d", 40, { fail: true })] }, slow(log, "e", 0)];
  await assert.rejects(runSteps(steps, undefined, (e) => events.push(e)), (e: unknown) => {
    assert.ok(e instanceof StepFailedError);
    assert.equal(e.step, "b");
    assert.deepEqual(e.siblingFailures.map((f) => f.step), ["d"]);
    assert.match(e.message, /^step b failed: b broke; step d failed too: d broke$/);
    return true;
  });
  assert.ok(log.indexOf("end c") < log.indexOf("undo c"), "the slow sibling finished before anything was undone");
  assert.deepEqual(log.filter((l) => l.startsWith("undo")), ["undo c", "undo a"], "only completed steps are undone, the failed ones are not");
  assert.ok(!log.includes("start e"));
  const kinds = new Map(events.map((e) => [e.step, e.kind]));
  assert.deepEqual(Object.fromEntries(kinds), { a: "undone", b: "failed", c: "undone", d: "failed" });
  await assert.rejects(runSteps([slow(log, "x", 0), { name: "g", parallel: [slow(log, "x", 0)] }], undefined), /step x appears twice/);
});
