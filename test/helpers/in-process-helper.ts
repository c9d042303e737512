import type { HelperClient } from "../../src/daemon/helper-client.js";
import type { MethodDescriptor } from "../../src/rpc/descriptor.js";
import type { Registration } from "../../src/rpc/dispatcher.js";
import { RpcError } from "../../src/rpc/errors.js";
import type { PeerCred } from "../../src/system/peercred.js";

/**
 * A HelperClient that calls root-helper handlers in this process (the test
 * runs as root), parsing params and results with the same schemas the socket
 * transport uses. Records every call so tests can assert the privileged
 * surface that was used.
 */
export function inProcessHelper(regs: readonly Registration<PeerCred>[], socketPath = "(in-process)"): HelperClient & { calls: { method: string; params: unknown }[] } {
  const table = new Map(regs.map((r) => [r.descriptor.name, r]));
  const calls: { method: string; params: unknown }[] = [];
  return {
    socketPath,
    calls,
    async call<D extends MethodDescriptor>(descriptor: D, params: unknown, opId: string) {
      const reg = table.get(descriptor.name);
      if (reg === undefined) throw new RpcError("unknown_method", descriptor.name);
      calls.push({ method: descriptor.name, params });
      const parsed: unknown = reg.descriptor.params.parse(params);
      const result = await reg.handler(parsed as never, { opId, method: descriptor.name, peer: { pid: process.pid, uid: 0, gid: 0 } as PeerCred });
      return descriptor.result.parse(result) as never;
    },
  };
}
