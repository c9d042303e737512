import { implement, type Registration } from "../../rpc/dispatcher.js";
import { operationCancel, operationGet, operationWait, type OperationView } from "../../rpc/daemon/operation.js";
import { RpcError } from "../../rpc/errors.js";
import type { OperationRecord, OperationRepository } from "../../state/operations.js";
import type { PeerCred } from "../../system/peercred.js";
import { cancellationsFor, OperationCancelledError } from "../operations/cancels.js";

export function operationToView(op: OperationRecord): OperationView {
  return {
    id: op.id,
    kind: op.kind,
    target: op.target,
    state: op.state,
    steps: op.steps,
    ...(op.result !== undefined ? { result: op.result } : {}),
    ...(op.error !== null ? { error: op.error } : {}),
    created_at: op.createdAt,
    updated_at: op.updatedAt,
    revision: op.revision,
  };
}

function notFound(id: string): RpcError {
  return new RpcError("not_found", `no operation ${JSON.stringify(id)} (finished operations are kept for a while, then pruned)`);
}

/** `closing` aborts when the daemon begins to stop, so long polls answer at once instead of holding up its exit. */
export function operationMethods(ops: OperationRepository, closing: AbortSignal): Registration<PeerCred>[] {
  return [
    implement(operationGet, (p) => {
      const op = ops.get(p.id);
      if (op === undefined) throw notFound(p.id);
      return operationToView(op);
    }),
    implement(operationWait, async (p) => {
      const op = await ops.waitForChange(p.id, p.after_revision, p.timeout_ms, closing);
      if (op === undefined) throw notFound(p.id);
      return operationToView(op);
    }),
    implement(operationCancel, (p, ctx) => {
      const op = ops.get(p.id);
      if (op === undefined) throw notFound(p.id);
      if (op.state !== "running") return { operation: operationToView(op), cancelled: false };
      if (!cancellationsFor(ops.db).cancel(p.id, new OperationCancelledError(`cancelled (${ctx.opId})`))) {
        throw new RpcError("conflict", `operation ${p.id} (${op.kind}) cannot be cancelled; wait for it with "banger operation wait ${p.id}"`);
      }
      return { operation: operationToView(ops.get(p.id) ?? op), cancelled: true };
    }),
  ];
}
