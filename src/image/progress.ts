/** One named build step starting or finishing; the CLI prints these with elapsed time. */
export interface ProgressEvent {
  readonly step: string;
  readonly state: "start" | "done";
  /** Milliseconds the step took (on "done"). */
  readonly elapsedMs?: number;
}

export type OnProgress = (event: ProgressEvent) => void;

/** Run fn as a named step, reporting start and done (with elapsed time) through onProgress. */
export async function step<T>(onProgress: OnProgress | undefined, name: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  onProgress?.({ step: name, state: "start" });
  const result = await fn();
  onProgress?.({ step: name, state: "done", elapsedMs: Math.round(performance.now() - started) });
  return result;
}
