import type { OperationRepository, OperationStep } from "../../state/operations.js";
import type { Logger } from "../../system/log.js";
import { errorMessage, type StepEvent } from "../vm/steps.js";
import { cancellationsFor, type OperationCancelledError } from "./cancels.js";

/**
 * Turns step-runner progress into the persisted operation record that
 * `operation.get` serves. The whole plan is written up front (all steps
 * `pending`) so a client can show what is coming, not only what happened.
 */
export interface TrackedOperation {
  readonly id: string;
  readonly onProgress: (event: StepEvent) => void;
  readonly succeed: (result: unknown) => void;
  readonly fail: (error: unknown) => void;
  /** Makes the operation cancellable (operation.cancel, Ctrl-C in the CLI) until it ends: `cancel` must make it unwind and fail. */
  readonly onCancel: (cancel: (reason: OperationCancelledError) => void) => void;
}

export class OperationTracker {
  constructor(private readonly ops: OperationRepository, private readonly logger: Logger) {}

  begin(id: string, kind: string, target: string | null, plan: readonly string[]): TrackedOperation {
    const steps: OperationStep[] = plan.map((name) => ({ name, state: "pending", started_at: null, elapsed_ms: null }));
    this.ops.insert(id, kind, target, steps);
    const log = this.logger.child({ op_id: id, operation: kind, ...(target !== null ? { vm: target } : {}) });
    const find = (name: string): OperationStep => {
      let s = steps.find((x) => x.name === name);
      if (s === undefined) {
        // A step inserted into the list after the plan was written still gets reported.
        s = { name, state: "pending", started_at: null, elapsed_ms: null };
        steps.push(s);
      }
      return s;
    };
    // A record that cannot be written (the disk under the state dir is full) must not take the daemon
    // down: progress writes run from timers, where a throw would be uncaught. The operation goes on;
    // its end is written when the disk allows.
    const write = (what: string, fn: () => void): void => {
      try {
        fn();
      } catch (e) {
        log.error(`could not record ${what}`, { error: errorMessage(e) });
      }
    };
    let finished = false;
    let unregister: () => void = () => undefined;
    // Steps of a group start and end in bursts; one write per burst (per event-loop turn) rather than
    // one per event. The end of the operation writes any pending change first.
    let pending: NodeJS.Immediate | undefined;
    const flush = (): void => {
      if (pending === undefined) return;
      clearImmediate(pending);
      pending = undefined;
      write("operation progress", () => { this.ops.updateSteps(id, steps); });
    };
    return {
      id,
      onProgress: (ev) => {
        const s = find(ev.step);
        switch (ev.kind) {
          case "started":
            s.state = "running";
            s.started_at = ev.startedAt;
            s.elapsed_ms = 0;
            break;
          case "succeeded":
            s.state = "succeeded";
            s.elapsed_ms = ev.elapsedMs;
            log.info("step done", { step: ev.step, duration_ms: ev.elapsedMs });
            break;
          case "failed":
            s.state = "failed";
            s.elapsed_ms = ev.elapsedMs;
            s.error = errorMessage(ev.error);
            log.warn("step failed", { step: ev.step, duration_ms: ev.elapsedMs, error: s.error });
            break;
          case "undone":
            s.state = "undone";
            break;
          case "undo_failed":
            s.state = "undo_failed";
            s.error = errorMessage(ev.error);
            log.error("undo failed", { step: ev.step, error: s.error });
            break;
        }
        pending ??= setImmediate(() => {
          pending = undefined;
          write("operation progress", () => { this.ops.updateSteps(id, steps); });
        });
      },
      onCancel: (cancel) => {
        if (finished) return;
        unregister();
        unregister = cancellationsFor(this.ops.db).register(id, (reason) => {
          log.info("operation cancel requested");
          cancel(reason);
        });
      },
      succeed: (result) => {
        if (finished) return;
        finished = true;
        unregister();
        flush();
        write("the operation's success", () => { this.ops.finish(id, "succeeded", { result }); });
        log.info("operation succeeded");
      },
      fail: (error) => {
        if (finished) return;
        finished = true;
        unregister();
        if (pending !== undefined) clearImmediate(pending);
        pending = undefined;
        write("operation progress", () => { this.ops.updateSteps(id, steps); });
        write("the operation's failure", () => { this.ops.finish(id, "failed", { error: errorMessage(error) }); });
        log.warn("operation failed", { error: errorMessage(error) });
      },
    };
  }
}
