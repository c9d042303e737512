import type { DaemonCaller } from "./client.js";
import { BangerError } from "./errors.js";
import type { LongOptions } from "./progress.js";
import type { OperationInfo } from "./wire-types.js";

/** Under the daemon's limit for one operation.wait (20 s), so a follower re-asks before its idle timeout. */
const WAIT_MS = 10_000;

/**
 * Follows an operation to its end by long polls (the daemon answers as soon as it changes) and
 * resolves with it once it succeeded; a failed one rejects with a BangerError (`operation_failed`)
 * carrying the operation, its message the failing step's error.
 */
export async function followOperation(client: DaemonCaller, operationId: string, opts: LongOptions & { opId?: string | undefined } = {}): Promise<OperationInfo> {
  let revision = 0;
  for (;;) {
    const op = await client.call("operation.wait", { id: operationId, after_revision: revision, timeout_ms: WAIT_MS }, { timeoutMs: WAIT_MS + 10_000, signal: opts.signal, opId: opts.opId });
    if (op.revision !== revision || op.state !== "running") emit(opts.onProgress, op);
    if (op.state === "succeeded") return op;
    if (op.state === "failed") {
      const failed = op.steps.find((s) => s.state === "failed");
      const why = op.error ?? failed?.error ?? "unknown error";
      throw new BangerError("operation_failed", `${op.kind}${op.target !== null ? ` ${op.target}` : ""} failed${failed !== undefined ? ` at ${failed.name}` : ""}: ${why}`, opts.opId ?? client.opId(), op);
    }
    revision = op.revision;
  }
}

function emit(onProgress: LongOptions["onProgress"], op: OperationInfo): void {
  if (onProgress === undefined) return;
  try {
    onProgress({ operationId: op.id, kind: op.kind, state: op.state, step: op.steps.find((s) => s.state === "running"), steps: op.steps, operation: op });
  } catch {
    // A listener's bug must not turn a VM that is being created into a lost one.
  }
}
