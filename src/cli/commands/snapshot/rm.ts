import type { Command } from "../../command.js";
import { forEachName, NAMES_FLAGS } from "../vm/common.js";

export const snapshotRmCommand: Command = {
  path: ["snapshot", "rm"],
  summary: "delete snapshots (VMs restored from them keep running: their disks are their own)",
  usage: "banger snapshot rm NAME... [--json]",
  flags: NAMES_FLAGS,
  examples: ["banger snapshot rm web-1"],
  completes: "snapshot",
  run: (args, ctx) => forEachName(args, ctx, NAMES_FLAGS, async (name, _force, opId) => {
    const r = await ctx.call("snapshot.delete", { name }, 60_000, opId);
    return { line: `deleted snapshot ${r.name}`, value: r };
  }),
};
