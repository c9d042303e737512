import Database from "better-sqlite3";
import { state } from "../src/paths/paths.js";
import { operationStepSchema } from "../src/state/operations.js";
import { info, median, round, type BenchResult } from "./stats.js";

export interface CreateOp {
  readonly steps: { name: string; started_at: string | null; elapsed_ms: number | null }[];
  /** When the daemon made the operation (ms since the epoch). */
  readonly createdAt: number;
  readonly wallMs: number;
}

/** Succeeded vm.create operations by VM name, with their steps and wall time (read-only: the daemon owns the DB). */
export function createOps(stateDir: string, names: readonly string[]): Map<string, CreateOp> {
  const db = new Database(state.database(stateDir), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare(`SELECT target, steps, created_at, updated_at FROM operations WHERE kind = 'vm.create' AND state = 'succeeded' AND target IN (${names.map(() => "?").join(",")})`).all(...names) as { target: string; steps: string; created_at: string; updated_at: string }[];
    return new Map(rows.map((r) => [r.target, { steps: operationStepSchema.array().parse(JSON.parse(r.steps)), createdAt: Date.parse(r.created_at), wallMs: Date.parse(r.updated_at) - Date.parse(r.created_at) }]));
  } finally {
    db.close();
  }
}

/** When a step ended (ms since the epoch), or NaN when it did not run. */
function stepEnd(op: CreateOp, name: string): number {
  const s = op.steps.find((x) => x.name === name);
  return s?.started_at == null || s.elapsed_ms === null ? NaN : Date.parse(s.started_at) + s.elapsed_ms;
}

/** One `banger vm create` as the bench saw it: when its CLI process was started and exited, when its VMM was spawned. */
export interface TimedCreate {
  readonly name: string;
  readonly cliStart: number;
  readonly cliExit: number;
  readonly vmmSpawned: number;
}

/**
 * Where one create's fixed cost goes, as medians over the serial creates: from the CLI's start to the
 * operation existing, every step before the guest boots, and from the guest answering (wait-ssh's end)
 * to the CLI's exit. The bare side is timed from qemu's spawn, so banger's fixed cost is what comes
 * before its VMM's spawn and after its guest answers. All informational: the breakdown says what to
 * cut; create_vs_bare_ratio judges the whole.
 */
export function fixedCostBreakdown(stateDir: string, creates: readonly TimedCreate[]): Record<string, BenchResult> {
  const ops = createOps(stateDir, creates.map((c) => c.name));
  if (ops.size !== creates.length) throw new Error(`found ${ops.size} succeeded vm.create operations for ${creates.length} creates`);
  const series = new Map<string, number[]>();
  const add = (key: string, ms: number): void => {
    if (!Number.isFinite(ms)) throw new Error(`create breakdown: no value for ${key}`);
    series.set(key, [...(series.get(key) ?? []), ms]);
  };
  for (const c of creates) {
    const op = ops.get(c.name);
    if (op === undefined) continue;
    const launch = op.steps.find((s) => s.name === "launch-vmm");
    const answered = stepEnd(op, "wait-ssh");
    add("create_cli_to_operation_ms", op.createdAt - c.cliStart);
    for (const s of op.steps) {
      if (s.name === "wait-ssh") continue;
      add(`create_step_${s.name.replaceAll("-", "_")}_ms`, s.elapsed_ms ?? NaN);
    }
    add("create_launch_to_spawn_ms", c.vmmSpawned - Date.parse(launch?.started_at ?? ""));
    add("create_before_spawn_ms", c.vmmSpawned - c.cliStart);
    add("create_answered_to_exit_ms", c.cliExit - answered);
    add("create_fixed_ms", c.vmmSpawned - c.cliStart + (c.cliExit - answered));
  }
  const what: Record<string, string> = {
    create_cli_to_operation_ms: "ms (median, serial creates: CLI process started -> vm.create operation made by the daemon)",
    create_launch_to_spawn_ms: "ms (median: launch-vmm started -> qemu spawned (its /proc start time, to 10 ms); the rest of launch-vmm is qemu's own set-up, which the bare side times too)",
    create_before_spawn_ms: "ms (median: CLI process started -> qemu spawned: everything before the guest starts booting)",
    create_answered_to_exit_ms: "ms (median: guest answered (wait-ssh done) -> CLI process exited)",
    create_fixed_ms: "ms (median per create of create_before_spawn_ms + create_answered_to_exit_ms: banger's fixed cost)",
  };
  const out: Record<string, BenchResult> = {};
  for (const [k, v] of series) out[k] = info(round(median(v), 1), what[k] ?? "ms (median over the serial creates: the step's own time; grouped steps overlap)");
  return out;
}
