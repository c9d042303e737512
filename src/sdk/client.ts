import type { ParamsOf, ResultOf } from "../rpc/descriptor.js";
import type { DaemonMethodName, DaemonMethods } from "../rpc/daemon/methods.js";
import { newOpId } from "../rpc/opid.js";
import { callOver, type Dial } from "../rpc/unix-client.js";
import { toBangerError } from "./errors.js";

export interface CallOpts {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal | undefined;
  readonly opId?: string | undefined;
}

/**
 * How the SDK reaches the daemon: a method by name, typed from its descriptor. The daemon checks
 * params against the method's schema and results before it sends them, so nothing here loads zod
 * (the CLI, which runs on the SDK, must start fast).
 */
export interface DaemonCaller {
  call<M extends DaemonMethodName>(method: M, params: ParamsOf<DaemonMethods[M]>, opts?: CallOpts): Promise<ResultOf<DaemonMethods[M]>>;
  /** The op id for a call that names none: fixed (a CLI invocation) or fresh per call. */
  opId(): string;
  readonly dial: Dial;
}

/**
 * A Dial whose connections an abort ends at once: an aborted long poll (operation.wait holds its
 * connection up to 20 s) must not keep a socket open after the caller gave up.
 */
function abortableDial(dial: Dial, signal: AbortSignal): Dial {
  return {
    label: dial.label,
    open() {
      const s = dial.open();
      const end = (): void => { s.destroy(new Error("aborted")); };
      signal.addEventListener("abort", end, { once: true });
      s.once("close", () => { signal.removeEventListener("abort", end); });
      return s;
    },
  };
}

export function daemonCaller(dial: Dial, fixedOpId?: string): DaemonCaller {
  const opId = (): string => fixedOpId ?? newOpId();
  return {
    dial,
    opId,
    async call(method, params, opts = {}) {
      const signal = opts.signal;
      signal?.throwIfAborted();
      const callOpts = { opId: opts.opId ?? opId(), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) };
      const over = signal === undefined ? dial : abortableDial(dial, signal);
      try {
        // The daemon validated the result against the method's schema: this is where it meets its type.
        return (await callOver(over, method, params, callOpts)) as never;
      } catch (e) {
        // The connection ended because of the abort: the caller sees the abort's reason, as with fetch().
        signal?.throwIfAborted();
        throw toBangerError(e);
      }
    },
  };
}
