import type { MethodDescriptor, ParamsOf, ResultOf } from "../rpc/descriptor.js";
import { callUnix } from "../rpc/unix-client.js";

/**
 * The daemon's handle on the root helper. Every call forwards the op id of
 * the daemon request that caused it, so one id spans CLI, daemon and helper logs.
 */
export interface HelperClient {
  readonly socketPath: string;
  call<D extends MethodDescriptor>(descriptor: D, params: ParamsOf<D>, opId: string, timeoutMs?: number): Promise<ResultOf<D>>;
}

export function unixHelperClient(socketPath: string): HelperClient {
  return {
    socketPath,
    call: (descriptor, params, opId, timeoutMs) => callUnix(socketPath, descriptor, params, timeoutMs === undefined ? { opId } : { opId, timeoutMs }),
  };
}
