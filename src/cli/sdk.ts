import { Banger } from "../sdk/banger.js";
import type { DaemonCaller } from "../sdk/client.js";
import type { CliContext } from "./command.js";

/**
 * The SDK over a CLI invocation's context: its calls go through ctx.call (the invocation's op id,
 * the daemon it dialled), so commands built on the SDK behave as the others do, fakes included.
 */
export function bangerFor(ctx: CliContext): Banger {
  const caller: DaemonCaller = {
    dial: ctx.dial,
    opId: () => ctx.opId,
    call: (method, params, opts = {}) => ctx.call(method, params, opts.timeoutMs, opts.opId),
  };
  return new Banger(caller);
}
