import { z } from "zod";
import type { Db } from "./database.js";

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
}

function fromRow(row: OperationRow): OperationRecord {
  const steps = z.array(operationStepSchema).safeParse(safeJson(row.steps));
  return {
    id: row.id,
    kind: row.kind,
    target: row.target,
    state: (OPERATION_STATES as readonly string[]).includes(row.state) ? (row.state as OperationState) : "failed",
    steps: steps.success ? steps.data : [],
    result: row.result === null ? undefined : safeJson(row.result),
    error: row.error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
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

/** The `operations` table: progress of long-running requests, readable by `operation.get` after the fact. */
export class OperationRepository {
  constructor(private readonly db: Db, private readonly now: () => Date = () => new Date()) {}

  insert(id: string, kind: string, target: string | null, steps: readonly OperationStep[]): OperationRecord {
    const ts = this.now().toISOString();
    try {
      this.db.prepare("INSERT INTO operations (id, kind, target, state, steps, created_at, updated_at) VALUES (?, ?, ?, 'running', ?, ?, ?)").run(id, kind, target, JSON.stringify(steps), ts, ts);
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
    const row = this.db.prepare("SELECT * FROM operations WHERE id = ?").get(id) as OperationRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  updateSteps(id: string, steps: readonly OperationStep[]): void {
    this.db.prepare("UPDATE operations SET steps = ?, updated_at = ? WHERE id = ?").run(JSON.stringify(steps), this.now().toISOString(), id);
  }

  finish(id: string, state: "succeeded" | "failed", outcome: { result?: unknown; error?: string }): void {
    this.db
      .prepare("UPDATE operations SET state = ?, result = ?, error = ?, updated_at = ? WHERE id = ?")
      .run(state, outcome.result === undefined ? null : JSON.stringify(outcome.result), outcome.error ?? null, this.now().toISOString(), id);
  }

  /** Operations still `running` when a daemon starts were cut off by its predecessor's exit. */
  failInterrupted(message: string): number {
    return this.db.prepare("UPDATE operations SET state = 'failed', error = ?, updated_at = ? WHERE state = 'running'").run(message, this.now().toISOString()).changes;
  }

  /** Drops finished operations older than `before`, so the table does not grow forever. */
  pruneFinished(before: Date): number {
    return this.db.prepare("DELETE FROM operations WHERE state != 'running' AND updated_at < ?").run(before.toISOString()).changes;
  }
}
