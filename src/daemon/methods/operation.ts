import { implement, type Registration } from "../../rpc/dispatcher.js";
import { operationGet, operationWait, type OperationView } from "../../rpc/daemon/operation.js";
import { RpcError } from "../../rpc/errors.js";
import type { OperationRecord, OperationRepository } from "../../state/operations.js";
import type { PeerCred } from "../../system/peercred.js";

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
  ];
}
