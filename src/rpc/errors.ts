/** Every error code either socket can answer with. Literal types so callers can switch exhaustively. */
export const ERROR_CODES = [
  "bad_version",
  "unknown_method",
  "bad_request",
  "bad_params",
  "unauthorized",
  "not_found",
  "conflict",
  "operation_failed",
  "internal",
  // Client-side only: the peer could not be reached or did not answer in time.
  "unavailable",
  "timeout",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * A typed RPC failure. Handlers throw it to choose the code the caller sees;
 * anything else a handler throws becomes `internal`.
 */
export class RpcError extends Error {
  readonly code: ErrorCode;
  readonly opId: string | undefined;

  constructor(code: ErrorCode, message: string, opId?: string) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.opId = opId;
  }

  withOpId(opId: string): RpcError {
    return this.opId === undefined ? new RpcError(this.code, this.message, opId) : this;
  }
}

export function isRpcError(e: unknown): e is RpcError {
  return e instanceof RpcError;
}
