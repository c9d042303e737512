import type { OperationInfo, OperationStep } from "./wire-types.js";

/**
 * What a long operation (create, start, restore, image build) reports while it runs: one event
 * each time the daemon's view of it changes (a step started, finished, failed or was undone).
 */
export interface ProgressEvent {
  readonly operationId: string;
  /** e.g. "vm.create", "image.build". */
  readonly kind: string;
  readonly state: OperationInfo["state"];
  /** The step running now, if any. */
  readonly step: OperationStep | undefined;
  readonly steps: readonly OperationStep[];
  readonly operation: OperationInfo;
}

export interface LongOptions {
  /** Called for every change of the operation, in order. An exception it throws is ignored. */
  readonly onProgress?: ((event: ProgressEvent) => void) | undefined;
  /** Stops waiting (and, for a create, deletes the half-made VM); the promise rejects with its reason. */
  readonly signal?: AbortSignal | undefined;
}
