import type { HelperClient } from "../../src/daemon/helper-client.js";
import type { MethodDescriptor } from "../../src/rpc/descriptor.js";
import { formatZodError, type Registration } from "../../src/rpc/dispatcher.js";
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
    async call(descriptor: MethodDescriptor, params: unknown, opId: string) {
      const reg = table.get(descriptor.name);
      if (reg === undefined) throw new RpcError("unknown_method", descriptor.name);
      calls.push({ method: descriptor.name, params });
      // Same as the Dispatcher: schema failures are bad_params naming the field.
      const r = reg.descriptor.params.safeParse(params);
      if (!r.success) throw new RpcError("bad_params", formatZodError(r.error));
      const peer: PeerCred = { pid: process.pid, uid: 0, gid: 0 };
      const result: unknown = await reg.handler(r.data as never, { opId, method: descriptor.name, peer, upgrade: () => { throw new RpcError("internal", "the root helper has no streaming methods"); } });
      return descriptor.result.parse(result) as never;
    },
  };
}
