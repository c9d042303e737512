import { parseArgs } from "node:util";
import { UsageError, type Command } from "../../../command.js";
import { printEgress } from "./print.js";

export const vmEgressShowCommand: Command = {
  path: ["vm", "egress", "show"],
  summary: "show a VM's egress policy and isolation",
  usage: "banger vm egress show NAME [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { json: { type: "boolean" } }, strict: true, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError("give exactly one VM name");
    printEgress(ctx, await ctx.call("vm.egress_show", { name: positionals[0] ?? "" }), values.json === true);
    return 0;
  },
};
