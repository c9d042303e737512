import { z } from "zod";
import { defineMethod } from "../descriptor.js";

export const operationStepView = z.object({
  name: z.string(),
  state: z.enum(["pending", "running", "succeeded", "failed", "undone", "undo_failed"]),
  started_at: z.string().nullable(),
  elapsed_ms: z.number().nullable(),
  error: z.string().optional(),
});

export const operationView = z.object({
  id: z.string(),
  kind: z.string(),
  target: z.string().nullable(),
  state: z.enum(["running", "succeeded", "failed"]),
  steps: z.array(operationStepView),
  result: z.unknown().optional(),
  error: z.string().optional(),
  created_at: z.string(),
  updated_at: z.string(),
  /** Bumped by every change: pass it to operation.wait as `after_revision`. */
  revision: z.number().int().nonnegative(),
});
export type OperationView = z.output<typeof operationView>;

export const operationGet = defineMethod("operation.get", z.object({ id: z.string().min(1).max(64) }).strict(), operationView);

/** Longest a single operation.wait may hold the connection: under the server's idle timeout, so followers re-ask. */
export const OPERATION_WAIT_MAX_MS = 20_000;

/**
 * Long poll: answers as soon as the operation changes past `after_revision`
 * or finishes, else when `timeout_ms` passes (with the unchanged view).
 */
export const operationWait = defineMethod(
  "operation.wait",
  z.object({
    id: z.string().min(1).max(64),
    after_revision: z.number().int().nonnegative(),
    timeout_ms: z.number().int().min(0).max(OPERATION_WAIT_MAX_MS).default(10_000),
  }).strict(),
  operationView,
);

/**
 * Asks a running operation (vm create/start/restart/restore, image build) to stop: it unwinds what
 * it made and ends `failed`. Answers at once with the view as it is; follow it with operation.wait.
 * `cancelled` is false when it had already ended (nothing to do).
 */
export const operationCancel = defineMethod(
  "operation.cancel",
  z.object({ id: z.string().min(1).max(64) }).strict(),
  z.object({ operation: operationView, cancelled: z.boolean() }),
);
