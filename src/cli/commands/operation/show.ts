import type { OperationView } from "../../../rpc/daemon/operation.js";
import { printJson, UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";
import { formatMs, operationElapsedMs } from "../../progress.js";

const SHOW_FLAGS = { json: { type: "boolean", description: "print the operation as JSON" } } as const satisfies FlagTable;

/** The one OP argument of `banger operation VERB OP`. */
export function operationArg(positionals: readonly string[]): string {
  if (positionals.length !== 1) throw new UsageError("give exactly one operation id (the op-… id that vm create, image build and --no-wait print)");
  return positionals[0] ?? "";
}

/** An operation as text: what it is, how it stands, each step with its time or error. */
export function renderOperation(op: OperationView): string {
  const lines = [
    `operation ${op.id}`,
    `  kind     ${op.kind}${op.target !== null ? ` ${op.target}` : ""}`,
    `  state    ${op.state}${op.state === "running" ? "" : ` after ${formatMs(operationElapsedMs(op))}`}`,
    `  started  ${op.created_at}`,
  ];
  if (op.error !== undefined) lines.push(`  error    ${op.error}`);
  if (op.steps.length > 0) {
    lines.push("  steps");
    const width = Math.max(...op.steps.map((s) => s.name.length));
    for (const s of op.steps) {
      const time = s.state === "running" && s.started_at !== null ? ` (${formatMs(Math.max(0, Date.now() - Date.parse(s.started_at)))} so far)` : s.elapsed_ms !== null && s.state !== "pending" ? ` (${formatMs(s.elapsed_ms)})` : "";
      lines.push(`    ${s.name.padEnd(width)}  ${s.state}${time}${s.error !== undefined ? `: ${s.error}` : ""}`);
    }
  }
  return lines.join("\n") + "\n";
}

export const operationShowCommand: Command = {
  path: ["operation", "show"],
  summary: "show an operation (vm create/start, image build, ...): its state and each step",
  usage: "banger operation show OP [--json]",
  flags: SHOW_FLAGS,
  examples: ["banger operation show op-1a2b3c4d5e6f"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(SHOW_FLAGS, args);
    const op = await ctx.call("operation.get", { id: operationArg(positionals) });
    if (values.json === true) printJson(ctx.stdout, op);
    else ctx.stdout.write(renderOperation(op));
    return 0;
  },
};
