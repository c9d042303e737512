import { UsageError, type Command } from "../../../command.js";
import { parseFlags, type FlagTable } from "../../../flags.js";
import { printPorts } from "./table.js";

const PORT_FLAGS = { json: { type: "boolean", description: "print {name, running, ports} as JSON" } } as const satisfies FlagTable;

export const vmPortLsCommand: Command = {
  path: ["vm", "port", "ls"],
  aliases: [["vm", "port", "list"]],
  summary: "list a VM's published ports",
  usage: "banger vm port ls NAME [--json]",
  flags: PORT_FLAGS,
  examples: ["banger vm port ls web"],
  completes: "vm",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(PORT_FLAGS, args);
    if (positionals.length !== 1) throw new UsageError("give exactly one VM name");
    printPorts(ctx, await ctx.call("vm.port_list", { name: positionals[0] ?? "" }), values.json === true);
    return 0;
  },
};
