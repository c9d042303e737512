import type { Command } from "../../command.js";
import { prune, PRUNE_FLAGS } from "../prune.js";

export const vmPruneCommand: Command = {
  path: ["vm", "prune"],
  summary: "delete every stopped VM with its disks and lease (VMs in state error are left for you to look at); -n lists them only",
  usage: "banger vm prune [--dry-run] [--json]",
  flags: PRUNE_FLAGS,
  examples: ["banger vm prune --dry-run", "banger vm prune"],
  run: (args, ctx) => prune(args, ctx, {
    noun: "VM",
    pick: async () => (await ctx.call("vm.list", {})).vms.filter((v) => v.state === "stopped").map((v) => v.name),
    // No --force: a VM started meanwhile is refused by the daemon, not deleted.
    remove: (name, opId) => ctx.call("vm.delete", { name }, 660_000, opId),
  }),
};
