import { RpcError, type ErrorCode } from "../rpc/errors.js";
import type { OperationInfo } from "./wire-types.js";

/**
 * Every failure the SDK reports from the daemon: `code` is the RPC error code (`not_found`,
 * `conflict`, `bad_params`, `operation_failed`, `unavailable`, `timeout`, ...) and `opId` the op
 * id to find in the daemon's log. A failed long operation (create, start, build) also carries the
 * operation with its steps, so a caller can tell which step failed and why.
 * It is an RpcError, so code that already handles those (the CLI) handles it too.
 */
export class BangerError extends RpcError {
  override readonly name: string = "BangerError";
  readonly operation: OperationInfo | undefined;

  constructor(code: ErrorCode, message: string, opId?: string, operation?: OperationInfo) {
    super(code, message, opId);
    this.operation = operation;
  }
}

export function isBangerError(e: unknown): e is BangerError {
  return e instanceof BangerError;
}

/** An RpcError from the transport becomes a BangerError with the same code, message and op id. */
export function toBangerError(e: unknown): unknown {
  if (e instanceof BangerError || !(e instanceof RpcError)) return e;
  return new BangerError(e.code, e.message, e.opId);
}
