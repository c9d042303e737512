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
});
export type OperationView = z.output<typeof operationView>;

export const operationGet = defineMethod("operation.get", z.object({ id: z.string().min(1).max(64) }).strict(), operationView);
