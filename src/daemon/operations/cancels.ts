import type { Db } from "../../state/database.js";

/** The reason a cancelled operation's steps see: they unwind as from any failure, and the record says why. */
export class OperationCancelledError extends Error {
  override readonly name = "OperationCancelledError";
}

/**
 * How to stop each running operation that can be stopped, by operation id. In memory: an operation
 * outlives no daemon (start-up unwinds what a previous one left), so neither does its cancel.
 */
export class Cancellations {
  private readonly handlers = new Map<string, (reason: OperationCancelledError) => void>();

  /** Returns the unregister function (called when the operation ends). */
  register(id: string, cancel: (reason: OperationCancelledError) => void): () => void {
    this.handlers.set(id, cancel);
    return () => {
      if (this.handlers.get(id) === cancel) this.handlers.delete(id);
    };
  }

  /** False when the operation is not running here or cannot be cancelled. */
  cancel(id: string, reason: OperationCancelledError): boolean {
    const h = this.handlers.get(id);
    if (h === undefined) return false;
    this.handlers.delete(id);
    h(reason);
    return true;
  }
}

// One registry per database connection, as the operation records are: the VM and image services
// each keep their own tracker, and operation.cancel must reach either.
const registries = new WeakMap<Db, Cancellations>();

export function cancellationsFor(db: Db): Cancellations {
  let c = registries.get(db);
  if (c === undefined) {
    c = new Cancellations();
    registries.set(db, c);
  }
  return c;
}
