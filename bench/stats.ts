/**
 * Shape of one entry in bench/results.json. Only ratios of two things measured side by side in the
 * same run carry a target: an absolute time or size measures the machine as much as banger, so it is
 * reported for information (target null) and never judged.
 */
export interface BenchResult {
  value: number;
  unit: string;
  target: number | null;
  /** "higher": the target is a floor (a throughput ratio); otherwise a ceiling. */
  better?: "higher";
}

/** An informational figure: reported beside the ratios, judged by none. */
export function info(value: number, unit: string): BenchResult {
  return { value, unit, target: null };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  // Even counts average the middle pair, so 2 or 4 samples do not silently pick the larger one.
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export function round(x: number, digits = 3): number {
  return Number(x.toFixed(digits));
}

/** Progress for humans on stderr; stdout carries only the JSON document. */
export function note(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/**
 * Runs the `i`th pair of a side-by-side measurement, alternating which side goes first so a slow
 * moment of the machine hits both alike; resolves with [a's figure, b's figure].
 */
export async function alternating(i: number, a: () => Promise<number>, b: () => Promise<number>): Promise<[number, number]> {
  if (i % 2 === 0) {
    const x = await a();
    return [x, await b()];
  }
  const y = await b();
  return [await a(), y];
}
