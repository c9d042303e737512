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
  constructor(
    readonly step: string,
    readonly stepError: unknown,
    readonly cleanupErrors: readonly unknown[],
    /** Other members of the failed step's group that failed too. */
    readonly siblingFailures: readonly { step: string; error: unknown }[] = [],
    /** The list was stopped (cancelled) before `step` began, rather than `step` failing. */
    readonly before = false,
  ) {
    let message = before ? `stopped before step ${step}: ${errorMessage(stepError)}` : `step ${step} failed: ${errorMessage(stepError)}`;
    for (const f of siblingFailures) message += `; step ${f.step} failed too: ${errorMessage(f.error)}`;
    if (cleanupErrors.length > 0) message += `; and cleanup failed: ${cleanupErrors.map(errorMessage).join("; ")}`;
    super([stepError, ...siblingFailures.map((f) => f.error), ...cleanupErrors], message);
  }
}

export function errorMessage(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0 && !(e instanceof StepFailedError)) return e.message;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Steps with no data between them, run concurrently (e.g. cloning the root
 * disk while the tap is made). Each member reports and unwinds as a step of
 * its own; the group waits for every member to settle before the list moves
 * on or unwinds, so a failure never races a sibling that is still working.
 */
export interface StepGroup<C> {
  readonly name: string;
  readonly parallel: readonly Step<C>[];
}

export type StepEntry<C> = Step<C> | StepGroup<C>;

function isGroup<C>(entry: StepEntry<C>): entry is StepGroup<C> {
  return "parallel" in entry;
}

/** The steps of a list in plan order, groups flattened: what an operation shows as its plan. */
export function stepNames<C>(entries: readonly StepEntry<C>[]): string[] {
  return entries.flatMap((e) => (isGroup(e) ? e.parallel.map((s) => s.name) : [e.name]));
}

/**
 * Runs the steps in order (a group's members concurrently). On the first
 * failure the undos of every completed step run once, in reverse, and a
 * StepFailedError carries the step's error, any sibling failures of the same
 * group, and every undo error. On success the undos are returned unrun as a
 * CleanupStack so the caller can keep it (e.g. to unwind later) or drop it.
 */
export async function runSteps<C>(entries: readonly StepEntry<C>[], ctx: C, onProgress: ProgressFn = () => undefined, signal?: AbortSignal): Promise<CleanupStack> {
  assertUniqueNames(entries);
  const stack = new CleanupStack();
  const startedAtByStep = new Map<string, string>();
  const runOne = async (step: Step<C>): Promise<void> => {
    const startedAt = new Date().toISOString();
    startedAtByStep.set(step.name, startedAt);
    safeProgress(onProgress, { step: step.name, kind: "started", startedAt, elapsedMs: 0 });
    const t0 = performance.now();
    try {
      await step.run(ctx);
    } catch (e) {
      safeProgress(onProgress, { step: step.name, kind: "failed", startedAt, elapsedMs: Math.round(performance.now() - t0), error: e });
      throw e;
    }
    safeProgress(onProgress, { step: step.name, kind: "succeeded", startedAt, elapsedMs: Math.round(performance.now() - t0) });
  };
  const unwind = async (): Promise<readonly unknown[]> => {
    try {
      await stack.run((name, error, elapsedMs) => {
        safeProgress(onProgress, { step: name, kind: error === undefined ? "undone" : "undo_failed", startedAt: startedAtByStep.get(name) ?? new Date().toISOString(), elapsedMs, error });
      });
      return [];
    } catch (agg) {
      return agg instanceof AggregateError ? (agg.errors as unknown[]) : [agg];
    }
  };
  for (const entry of entries) {
    // A cancelled operation (or a daemon shutting down) stops between steps; the step that is running
    // when it comes sees the same signal only if it waits on it (ssh readiness does).
    if (signal?.aborted === true) throw new StepFailedError(entry.name, signal.reason, await unwind(), [], true);
    const members = isGroup(entry) ? entry.parallel : [entry];
    const outcomes = await Promise.allSettled(members.map(runOne));
    const failures: { step: string; error: unknown }[] = [];
    // Undos are pushed in list order whatever order members finished in, so unwinding is deterministic.
    members.forEach((step, i) => {
      const outcome = outcomes[i];
      if (outcome?.status === "rejected") {
        failures.push({ step: step.name, error: outcome.reason });
        return;
      }
      const undo = step.undo?.bind(step);
      if (undo !== undefined) stack.push(step.name, () => undo(ctx));
    });
    const [first, ...siblings] = failures;
    if (first === undefined) continue;
    throw new StepFailedError(first.step, first.error, await unwind(), siblings);
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

function assertUniqueNames<C>(entries: readonly StepEntry<C>[]): void {
  const seen = new Set<string>();
  for (const name of [...entries.filter(isGroup).map((g) => g.name), ...stepNames(entries)]) {
    if (seen.has(name)) throw new Error(`step ${name} appears twice in the list`);
    seen.add(name);
  }
}

/** List editing (top-level entries; a group is addressed by its name), returning new arrays so a shared default list is never mutated. */
function indexOrThrow<C>(steps: readonly StepEntry<C>[], name: string): number {
  const i = steps.findIndex((s) => s.name === name);
  if (i === -1) throw new Error(`no step named ${name} (have: ${steps.map((s) => s.name).join(", ")})`);
  return i;
}

export function insertBefore<C>(steps: readonly StepEntry<C>[], anchor: string, step: StepEntry<C>): StepEntry<C>[] {
  const i = indexOrThrow(steps, anchor);
  return [...steps.slice(0, i), step, ...steps.slice(i)];
}

export function insertAfter<C>(steps: readonly StepEntry<C>[], anchor: string, step: StepEntry<C>): StepEntry<C>[] {
  const i = indexOrThrow(steps, anchor);
  return [...steps.slice(0, i + 1), step, ...steps.slice(i + 1)];
}

export function replaceStep<C>(steps: readonly StepEntry<C>[], name: string, step: StepEntry<C>): StepEntry<C>[] {
  const i = indexOrThrow(steps, name);
  return [...steps.slice(0, i), step, ...steps.slice(i + 1)];
}

export function removeStep<C>(steps: readonly StepEntry<C>[], name: string): StepEntry<C>[] {
  const i = indexOrThrow(steps, name);
  return [...steps.slice(0, i), ...steps.slice(i + 1)];
}
