import { parseArgs } from "node:util";
import { printJson, UsageError, type Command } from "../../command.js";

export const imageRmCommand: Command = {
  path: ["image", "rm"],
  summary: "delete an image (refused while a VM uses it)",
  usage: "banger image rm NAME [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { json: { type: "boolean" } }, strict: true, allowPositionals: true });
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError("expected exactly one image NAME");
    const res = await ctx.call("image.delete", { name });
    if (values.json === true) printJson(ctx.stdout, res);
    else ctx.stdout.write(`deleted image ${res.name}\n`);
    return 0;
  },
};
