import { printJson, UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";

const RM_FLAGS = { json: { type: "boolean", description: "print {name, deleted} as JSON" } } as const satisfies FlagTable;

export const imageRmCommand: Command = {
  path: ["image", "rm"],
  summary: "delete an image (refused while a VM uses it)",
  usage: "banger image rm NAME [--json]",
  flags: RM_FLAGS,
  examples: ["banger image rm tiny"],
  completes: "image",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(RM_FLAGS, args);
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError("expected exactly one image NAME");
    const res = await ctx.call("image.delete", { name });
    if (values.json === true) printJson(ctx.stdout, res);
    else ctx.stdout.write(`deleted image ${res.name}\n`);
    return 0;
  },
};
