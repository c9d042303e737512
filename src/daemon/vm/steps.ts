/**
 * A named list of steps with a cleanup stack, in the style of
 * firecracker-go-sdk's handler lists: each step is small and testable alone,
 * the list can be inspected and edited (insert/replace) before it runs, and
 * every completed step's undo is pushed on a stack that unwinds once, in
 * reverse, when a later step fails.
 */
export interface Step<C> {
  readonly name: string;
  run(ctx: C): Promise<void>;
  /** Reverts what `run` did. Runs only if `run` resolved. Must tolerate partial/absent state. */
  undo?(ctx: C): Promise<void>;
}

export type StepEventKind = "started" | "succeeded" | "failed" | "undone" | "undo_failed";

export interface StepEvent {
  readonly step: string;
  readonly kind: StepEventKind;
  /** When the step's run started (ISO). */
  readonly startedAt: string;
  /** Time spent in run (for started: 0; for undo events: the undo's own duration). */
  readonly elapsedMs: number;
  readonly error?: unknown;
}

export type ProgressFn = (event: StepEvent) => void;

/** Undo actions, run once in reverse order, every one even when earlier ones fail. */
export class CleanupStack {
  private readonly entries: { name: string; undo: () => Promise<void> }[] = [];
  private ran = false;

  push(name: string, undo: () => Promise<void>): void {
    if (this.ran) throw new Error(`cleanup stack already ran; cannot register ${name}`);
    this.entries.push({ name, undo });
  }

  get size(): number {
    return this.entries.length;
  }

  /** Runs every undo (last first); throws an AggregateError of all failures after all have run. */
  async run(onEach?: (name: string, error: unknown, elapsedMs: number) => void): Promise<void> {
    if (this.ran) return;
    this.ran = true;
    const errors: unknown[] = [];
    for (const { name, undo } of [...this.entries].reverse()) {
      const t0 = performance.now();
      let error: unknown;
      try {
        await undo();
      } catch (e) {
        error = e;
        errors.push(new Error(`undo ${name}: ${errorMessage(e)}`, { cause: e }));
      }
      onEach?.(name, error, Math.round(performance.now() - t0));
    }
    if (errors.length > 0) throw new AggregateError(errors, `cleanup failed in ${errors.length} step(s): ${errors.map(errorMessage).join("; ")}`);
  }
}

/**
 * A step failed. `errors[0]` is the step's own error; the rest are undo
 * failures of earlier steps (collect-and-continue), so nothing is hidden.
 */
export class StepFailedError extends AggregateError {
  override readonly name = "StepFailedError";
  constructor(readonly step: string, readonly stepError: unknown, readonly cleanupErrors: readonly unknown[]) {
    const base = `step ${step} failed: ${errorMessage(stepError)}`;
    super([stepError, ...cleanupErrors], cleanupErrors.length === 0 ? base : `${base}; and cleanup failed: ${cleanupErrors.map(errorMessage).join("; ")}`);
  }
}

export function errorMessage(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0 && !(e instanceof StepFailedError)) return e.message;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs the steps in order. On the first failure the undos of every completed
 * step run once, in reverse, and a StepFailedError carries the step's error
 * plus every undo error. On success the undos are returned unrun as a
 * CleanupStack so the caller can keep it (e.g. to unwind later) or drop it.
 */
export async function runSteps<C>(steps: readonly Step<C>[], ctx: C, onProgress: ProgressFn = () => undefined): Promise<CleanupStack> {
  assertUniqueNames(steps);
  const stack = new CleanupStack();
  const startedAtByStep = new Map<string, string>();
  for (const step of steps) {
    const startedAt = new Date().toISOString();
    startedAtByStep.set(step.name, startedAt);
    safeProgress(onProgress, { step: step.name, kind: "started", startedAt, elapsedMs: 0 });
    const t0 = performance.now();
    try {
      await step.run(ctx);
    } catch (e) {
      safeProgress(onProgress, { step: step.name, kind: "failed", startedAt, elapsedMs: Math.round(performance.now() - t0), error: e });
      let cleanupErrors: readonly unknown[] = [];
      try {
        await stack.run((name, error, elapsedMs) => {
          safeProgress(onProgress, { step: name, kind: error === undefined ? "undone" : "undo_failed", startedAt: startedAtByStep.get(name) ?? startedAt, elapsedMs, error });
        });
      } catch (agg) {
        cleanupErrors = agg instanceof AggregateError ? agg.errors : [agg];
      }
      throw new StepFailedError(step.name, e, cleanupErrors);
    }
    safeProgress(onProgress, { step: step.name, kind: "succeeded", startedAt, elapsedMs: Math.round(performance.now() - t0) });
    const undo = step.undo?.bind(step);
    if (undo !== undefined) stack.push(step.name, () => undo(ctx));
  }
  return stack;
}

// A progress sink that throws (e.g. a DB write failing) must not turn a working step into a failed one.
function safeProgress(fn: ProgressFn, event: StepEvent): void {
  try {
    fn(event);
  } catch {
    // Progress is advisory.
  }
}

function assertUniqueNames<C>(steps: readonly Step<C>[]): void {
  const seen = new Set<string>();
  for (const s of steps) {
    if (seen.has(s.name)) throw new Error(`step ${s.name} appears twice in the list`);
    seen.add(s.name);
  }
}

/** List editing, returning new arrays so a shared default list is never mutated. */
export function stepNames<C>(steps: readonly Step<C>[]): string[] {
  return steps.map((s) => s.name);
}

function indexOrThrow<C>(steps: readonly Step<C>[], name: string): number {
  const i = steps.findIndex((s) => s.name === name);
  if (i === -1) throw new Error(`no step named ${name} (have: ${stepNames(steps).join(", ")})`);
  return i;
}

export function insertBefore<C>(steps: readonly Step<C>[], anchor: string, step: Step<C>): Step<C>[] {
  const i = indexOrThrow(steps, anchor);
  return [...steps.slice(0, i), step, ...steps.slice(i)];
}

export function insertAfter<C>(steps: readonly Step<C>[], anchor: string, step: Step<C>): Step<C>[] {
  const i = indexOrThrow(steps, anchor);
  return [...steps.slice(0, i + 1), step, ...steps.slice(i + 1)];
}

export function replaceStep<C>(steps: readonly Step<C>[], name: string, step: Step<C>): Step<C>[] {
  const i = indexOrThrow(steps, name);
  return [...steps.slice(0, i), step, ...steps.slice(i + 1)];
}

export function removeStep<C>(steps: readonly Step<C>[], name: string): Step<C>[] {
  const i = indexOrThrow(steps, name);
  return [...steps.slice(0, i), ...steps.slice(i + 1)];
}
