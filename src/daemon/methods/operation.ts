import { implement, type Registration } from "../../rpc/dispatcher.js";
import { operationGet, type OperationView } from "../../rpc/daemon/operation.js";
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
  };
}

export function operationMethods(ops: OperationRepository): Registration<PeerCred>[] {
  return [
    implement(operationGet, (p) => {
      const op = ops.get(p.id);
      if (op === undefined) throw new RpcError("not_found", `no operation ${JSON.stringify(p.id)} (finished operations are kept for a while, then pruned)`);
      return operationToView(op);
    }),
  ];
}
