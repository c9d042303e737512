import { parseArgs } from "node:util";
import { UsageError, type Command } from "../../../command.js";
import { printPorts } from "./table.js";

export const vmPortLsCommand: Command = {
  path: ["vm", "port", "ls"],
  aliases: [["vm", "port", "list"]],
  summary: "list a VM's published ports",
  usage: "banger vm port ls NAME [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { json: { type: "boolean" } }, strict: true, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError("give exactly one VM name");
    printPorts(ctx, await ctx.call("vm.port_list", { name: positionals[0] ?? "" }), values.json === true);
    return 0;
  },
};
