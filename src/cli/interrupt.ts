import type { OperationView } from "../rpc/daemon/operation.js";
import type { CliContext, InterruptHook } from "./command.js";
import { followOperation } from "./progress.js";

/** SIGINT of this process. While a handler is installed Node does not exit on Ctrl-C; the handler decides. */
export const processInterrupts: InterruptHook = (handler) => {
  process.on("SIGINT", handler);
  return () => { process.removeListener("SIGINT", handler); };
};

/** Exit code of a command ended by Ctrl-C (128 + SIGINT), as shells expect. */
export const INTERRUPTED_EXIT = 130;

export interface FollowOutcome {
  /** The operation's last view; undefined when following stopped before it ended. */
  readonly op: OperationView | undefined;
  /** What Ctrl-C did: asked the daemon to cancel (and unwind), or left the operation running. */
  readonly interrupted: "cancelled" | "detached" | undefined;
}

/**
 * Follows an operation the way `followOperation` does, with Ctrl-C meaning "cancel it": the daemon
 * unwinds it (nothing half-made is left) and this waits for that, drawing the undone steps. A second
 * Ctrl-C stops waiting. With `detach`, Ctrl-C instead stops following and leaves the operation running,
 * saying how to follow or cancel it later.
 */
export async function followInterruptible(ctx: CliContext, operationId: string, label: string, opts: { quiet: boolean; detach: boolean; opIdForCalls?: string | undefined }): Promise<FollowOutcome> {
  const stop = new AbortController();
  let interrupted: FollowOutcome["interrupted"];
  const callOpId = opts.opIdForCalls ?? ctx.opId;
  const onInterrupt = (): void => {
    if (interrupted !== undefined || opts.detach) {
      if (interrupted === "cancelled") ctx.stderr.write(`\nstopped waiting; ${operationId} is still unwinding in the daemon: see banger operation show ${operationId}\n`);
      else ctx.stderr.write(`\ndetached: ${operationId} keeps running; follow it with: banger operation wait ${operationId} (or cancel it: banger operation cancel ${operationId})\n`);
      interrupted ??= "detached";
      stop.abort(new Error("stopped following"));
      return;
    }
    interrupted = "cancelled";
    ctx.stderr.write(`\ncancelling ${operationId}: unwinding what it made (Ctrl-C again stops waiting for that)\n`);
    ctx.call("operation.cancel", { id: operationId }, 10_000, callOpId).then(
      (r) => { if (!r.cancelled) ctx.stderr.write(`${operationId} had already ended\n`); },
      (e: unknown) => { ctx.stderr.write(`error: could not cancel ${operationId}: ${e instanceof Error ? e.message : String(e)}\n`); },
    );
  };
  const remove = (ctx.interrupts ?? processInterrupts)(onInterrupt);
  try {
    const op = await followOperation(ctx, operationId, label, { quiet: opts.quiet, signal: stop.signal, opIdForCalls: callOpId });
    return { op, interrupted };
  } catch (e) {
    if (stop.signal.aborted) return { op: undefined, interrupted };
    throw e;
  } finally {
    remove();
  }
}

/** A command ended by Ctrl-C after saying what became of its operation: exit 130, nothing more to print. */
export class InterruptedError extends Error {
  override readonly name = "InterruptedError";
}

/**
 * After an interrupted follow: say what became of the operation and end the command. A cancel that
 * came too late (the operation had already succeeded) leaves its result in place, and says so.
 */
export function endInterrupted(ctx: CliContext, outcome: FollowOutcome, what: string, undoHint: string): never {
  const op = outcome.op;
  if (outcome.interrupted === "cancelled" && op !== undefined) {
    if (op.state === "succeeded") ctx.stderr.write(`${what} finished before the cancel reached it; ${undoHint}\n`);
    else ctx.stderr.write(`${what} cancelled: ${op.error ?? "unwound"}\n`);
  }
  throw new InterruptedError(`${what} interrupted`);
}
