import type { MethodDescriptor, ParamsOf, ResultOf } from "../rpc/descriptor.js";
import { callMethod } from "../rpc/unix-client.js";

/**
 * The daemon's handle on the root helper. Every call forwards the op id of
 * the daemon request that caused it, so one id spans CLI, daemon and helper logs.
 * Results are not re-validated here: the helper checks each one against the
 * descriptor's schema before it answers.
 */
export interface HelperClient {
  readonly socketPath: string;
  call<D extends MethodDescriptor>(descriptor: D, params: ParamsOf<D>, opId: string, timeoutMs?: number): Promise<ResultOf<D>>;
}

export function unixHelperClient(socketPath: string): HelperClient {
  return {
    socketPath,
    call: (descriptor, params, opId, timeoutMs) => callMethod(socketPath, descriptor, params, timeoutMs === undefined ? { opId } : { opId, timeoutMs }),
  };
}
