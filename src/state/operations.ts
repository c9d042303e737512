import { EventEmitter } from "node:events";
import { z } from "zod";
import { statement, type Db } from "./database.js";

export const OPERATION_STATES = ["running", "succeeded", "failed"] as const;
export type OperationState = (typeof OPERATION_STATES)[number];

/** pending -> running -> succeeded | failed; a succeeded step becomes `undone` when a later failure rolls it back. */
export const STEP_STATES = ["pending", "running", "succeeded", "failed", "undone", "undo_failed"] as const;
export type StepState = (typeof STEP_STATES)[number];

export const operationStepSchema = z.object({
  name: z.string(),
  state: z.enum(STEP_STATES),
  started_at: z.string().nullable(),
  elapsed_ms: z.number().nullable(),
  error: z.string().optional(),
});
export type OperationStep = z.output<typeof operationStepSchema>;

export interface OperationRecord {
  readonly id: string;
  readonly kind: string;
  readonly target: string | null;
  readonly state: OperationState;
  readonly steps: OperationStep[];
  readonly result: unknown;
  readonly error: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Bumped by every change; `waitForChange` compares against it. */
  readonly revision: number;
}

interface OperationRow {
  id: string;
  kind: string;
  target: string | null;
  state: string;
  steps: string;
  result: string | null;
  error: string | null;
  created_at: string;
  updated_at: string;
  revision: number;
}

/**
 * The steps column, which only the tracker writes. Checked by hand rather than with the zod
 * schema: followers read it on every change of every running operation, and zod's generic
 * walk was most of that cost. Anything malformed reads as no steps, as before.
 */
function parseSteps(text: string): OperationStep[] {
  const value = safeJson(text);
  if (!Array.isArray(value)) return [];
  const steps: OperationStep[] = [];
  for (const v of value as unknown[]) {
    if (typeof v !== "object" || v === null) return [];
    const { name, state, started_at: startedAt, elapsed_ms: elapsedMs, error } = v as Record<string, unknown>;
    if (typeof name !== "string" || !(STEP_STATES as readonly unknown[]).includes(state)) return [];
    if (!(startedAt === null || typeof startedAt === "string") || !(elapsedMs === null || typeof elapsedMs === "number")) return [];
    if (error !== undefined && typeof error !== "string") return [];
    steps.push({ name, state: state as StepState, started_at: startedAt, elapsed_ms: elapsedMs, ...(error === undefined ? {} : { error }) });
  }
  return steps;
}

function fromRow(row: OperationRow): OperationRecord {
  return {
    id: row.id,
    kind: row.kind,
    target: row.target,
    state: (OPERATION_STATES as readonly string[]).includes(row.state) ? (row.state as OperationState) : "failed",
    steps: parseSteps(row.steps),
    result: row.result === null ? undefined : safeJson(row.result),
    error: row.error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    revision: row.revision,
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export class DuplicateOperationError extends Error {
  override readonly name = "DuplicateOperationError";
}

/**
 * How long a waiter lets a burst of step changes settle before answering (the end is never
 * delayed): at most ~4 answers a second per follower, each a round trip, however busy the
 * daemon is; a step line shown 250 ms late is not something a person sees, and a create's
 * quick steps then reach the CLI in one or two answers instead of one each.
 */
const CHANGE_GATHER_MS = 250;

// One emitter per database connection: the VM and image services each keep their own repository,
// and a waiter must hear about changes made through either.
const emitters = new WeakMap<Db, EventEmitter>();

function changes(db: Db): EventEmitter {
  let e = emitters.get(db);
  if (e === undefined) {
    e = new EventEmitter();
    // Every client following an operation holds one listener; there is no leak to warn about.
    e.setMaxListeners(0);
    emitters.set(db, e);
  }
  return e;
}

/**
 * Outcomes that could not be written (the disk under the state dir is full), per connection: a
 * client following the operation must still learn how it ended instead of waiting on a record
 * that says `running`. They live as long as the daemon; a restart marks such operations failed.
 */
const unsaved = new WeakMap<Db, Map<string, OperationRecord>>();

function unsavedOf(db: Db): Map<string, OperationRecord> {
  let m = unsaved.get(db);
  if (m === undefined) {
    m = new Map();
    unsaved.set(db, m);
  }
  return m;
}

/** The `operations` table: progress of long-running requests, readable by `operation.get` after the fact. */
export class OperationRepository {
  constructor(readonly db: Db, private readonly now: () => Date = () => new Date()) {}

  /**
   * Resolves with the operation once it has changed past `afterRevision` or
   * finished, or as it is when `timeoutMs` passes or `signal` aborts: a long
   * poll, so followers learn of each step at once without hammering the daemon.
   * Step changes come in bursts (a group's members start together), so a
   * change is answered after a short pause that gathers its burst; the end
   * of the operation is answered at once.
   */
  async waitForChange(id: string, afterRevision: number, timeoutMs: number, signal?: AbortSignal): Promise<OperationRecord | undefined> {
    const first = this.get(id);
    if (first === undefined || first.state !== "running" || first.revision > afterRevision || signal?.aborted === true) return first;
    const emitter = changes(this.db);
    await new Promise<void>((resolve) => {
      let gather: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        clearTimeout(gather);
        emitter.off(id, onChange);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const onChange = (finished: boolean): void => {
        if (finished) done();
        else gather ??= setTimeout(done, CHANGE_GATHER_MS);
      };
      const timer = setTimeout(done, timeoutMs);
      emitter.on(id, onChange);
      signal?.addEventListener("abort", done, { once: true });
    });
    return this.get(id);
  }

  private changed(id: string, finished: boolean): void {
    changes(this.db).emit(id, finished);
  }

  insert(id: string, kind: string, target: string | null, steps: readonly OperationStep[]): OperationRecord {
    const ts = this.now().toISOString();
    try {
      statement(this.db, "INSERT INTO operations (id, kind, target, state, steps, created_at, updated_at) VALUES (?, ?, ?, 'running', ?, ?, ?)").run(id, kind, target, JSON.stringify(steps), ts, ts);
    } catch (e) {
      if (e instanceof Error && "code" in e && typeof e.code === "string" && e.code.startsWith("SQLITE_CONSTRAINT")) {
        throw new DuplicateOperationError(`operation ${id} already exists; every request needs a fresh op id`);
      }
      throw e;
    }
    const rec = this.get(id);
    if (rec === undefined) throw new Error(`operation ${id} vanished right after insert`);
    return rec;
  }

  get(id: string): OperationRecord | undefined {
    const kept = unsavedOf(this.db).get(id);
    if (kept !== undefined) return kept;
    const row = statement(this.db, "SELECT * FROM operations WHERE id = ?").get(id) as OperationRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  updateSteps(id: string, steps: readonly OperationStep[]): void {
    statement(this.db, "UPDATE operations SET steps = ?, updated_at = ?, revision = revision + 1 WHERE id = ?").run(JSON.stringify(steps), this.now().toISOString(), id);
    this.changed(id, false);
  }

  /**
   * Records how the operation ended. When that write fails, the outcome is still served from memory
   * (and followers are told) before the error is rethrown for the caller to log.
   */
  finish(id: string, state: "succeeded" | "failed", outcome: { result?: unknown; error?: string }): void {
    const ts = this.now().toISOString();
    try {
      statement(this.db, "UPDATE operations SET state = ?, result = ?, error = ?, updated_at = ?, revision = revision + 1 WHERE id = ?")
        .run(state, outcome.result === undefined ? null : JSON.stringify(outcome.result), outcome.error ?? null, ts, id);
    } catch (e) {
      const last = this.get(id);
      if (last !== undefined) unsavedOf(this.db).set(id, { ...last, state, result: outcome.result, error: outcome.error ?? null, updatedAt: ts, revision: last.revision + 1 });
      this.changed(id, true);
      throw e;
    }
    this.changed(id, true);
  }

  /** Operations still `running` when a daemon starts were cut off by its predecessor's exit. */
  failInterrupted(message: string): number {
    return statement(this.db, "UPDATE operations SET state = 'failed', error = ?, updated_at = ?, revision = revision + 1 WHERE state = 'running'").run(message, this.now().toISOString()).changes;
  }

  /** Drops finished operations older than `before`, so the table does not grow forever. */
  pruneFinished(before: Date): number {
    return statement(this.db, "DELETE FROM operations WHERE state != 'running' AND updated_at < ?").run(before.toISOString()).changes;
  }
}
