import { printJson, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";
import { followOperation, formatMs, operationElapsedMs } from "../../progress.js";
import { operationArg } from "./show.js";

const WAIT_FLAGS = { json: { type: "boolean", description: "print the finished operation as JSON instead of progress" } } as const satisfies FlagTable;

export const operationWaitCommand: Command = {
  path: ["operation", "wait"],
  summary: "follow an operation to its end with progress per step; exit 0 if it succeeded, 1 if it failed (Ctrl-C stops waiting, not the operation)",
  usage: "banger operation wait OP [--json]",
  flags: WAIT_FLAGS,
  examples: ["banger operation wait op-1a2b3c4d5e6f"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(WAIT_FLAGS, args);
    const id = operationArg(positionals);
    const json = values.json === true;
    const op = await followOperation(ctx, id, id, { quiet: json });
    if (json) printJson(ctx.stdout, op);
    else if (op.state === "succeeded") ctx.stdout.write(`${op.id} (${op.kind}${op.target !== null ? ` ${op.target}` : ""}) succeeded in ${formatMs(operationElapsedMs(op))}\n`);
    else ctx.stderr.write(`error: ${op.id} (${op.kind}${op.target !== null ? ` ${op.target}` : ""}) failed: ${op.error ?? "unknown error"}\n`);
    return op.state === "succeeded" ? 0 : 1;
  },
};
