import { UsageError, type Command } from "../../../command.js";
import { type FlagTable, JSON_FLAG, parseFlags } from "../../../flags.js";
import { printEgress } from "./print.js";

const SHOW_FLAGS = { json: JSON_FLAG } as const satisfies FlagTable;

export const vmEgressShowCommand: Command = {
  path: ["vm", "egress", "show"],
  summary: "show a VM's egress policy and isolation",
  usage: "banger vm egress show NAME [--json]",
  flags: SHOW_FLAGS,
  completes: "vm",
  examples: ["banger vm egress show web"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(SHOW_FLAGS, args);
    if (positionals.length !== 1) throw new UsageError("give exactly one VM name");
    printEgress(ctx, await ctx.call("vm.egress_show", { name: positionals[0] ?? "" }), values.json === true);
    return 0;
  },
};
