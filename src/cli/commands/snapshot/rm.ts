import type { Command } from "../../command.js";
import { forEachName } from "../vm/common.js";

export const snapshotRmCommand: Command = {
  path: ["snapshot", "rm"],
  summary: "delete snapshots (VMs restored from them keep running: their disks are their own)",
  usage: "banger snapshot rm NAME...",
  run: (args, ctx) => forEachName(args, ctx, { force: false }, async (name, _force, opId) => {
    const r = await ctx.call("snapshot.delete", { name }, 60_000, opId);
    return `deleted snapshot ${r.name}`;
  }),
};
