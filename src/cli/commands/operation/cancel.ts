import { printJson, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";
import { followOperation } from "../../progress.js";
import { operationArg } from "./show.js";

const CANCEL_FLAGS = {
  "no-wait": { type: "boolean", description: "return once the cancel is asked for, without waiting for the unwinding" },
  json: { type: "boolean", description: "print the operation as JSON" },
} as const satisfies FlagTable;

export const operationCancelCommand: Command = {
  path: ["operation", "cancel"],
  summary: "cancel a running operation (vm create/start/restart/restore, image build): it unwinds what it made; waits for that unless --no-wait",
  usage: "banger operation cancel OP [--no-wait] [--json]",
  flags: CANCEL_FLAGS,
  examples: ["banger operation cancel op-1a2b3c4d5e6f"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(CANCEL_FLAGS, args);
    const id = operationArg(positionals);
    const json = values.json === true;
    const r = await ctx.call("operation.cancel", { id });
    if (!r.cancelled) {
      // Idempotent, as `docker stop` of a stopped container: nothing to cancel is not a failure.
      if (json) printJson(ctx.stdout, r.operation);
      else ctx.stdout.write(`${id} already ${r.operation.state}; nothing to cancel\n`);
      return 0;
    }
    const op = values["no-wait"] === true ? r.operation : await followOperation(ctx, id, id, { quiet: json });
    if (json) printJson(ctx.stdout, op);
    else if (op.state === "running") ctx.stdout.write(`${id} is being cancelled; follow it with: banger operation wait ${id}\n`);
    else if (op.state === "failed") ctx.stdout.write(`${id} cancelled: ${op.error ?? "unwound"}\n`);
    else ctx.stdout.write(`${id} finished before the cancel reached it\n`);
    return 0;
  },
};
