import type { Command } from "../../command.js";
import { prune, PRUNE_FLAGS } from "../prune.js";

export const imagePruneCommand: Command = {
  path: ["image", "prune"],
  summary: "delete every image no VM uses (the default image is built again on the next vm run); -n lists them only",
  usage: "banger image prune [--dry-run] [--json]",
  flags: PRUNE_FLAGS,
  examples: ["banger image prune --dry-run", "banger image prune"],
  run: (args, ctx) => prune(args, ctx, {
    noun: "image",
    pick: async () => (await ctx.call("image.list", {})).images.filter((i) => i.used_by.length === 0).map((i) => i.name),
    // The daemon refuses an image a VM took up meanwhile.
    remove: (name, opId) => ctx.call("image.delete", { name }, 60_000, opId),
  }),
};
