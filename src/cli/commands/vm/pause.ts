import type { Command } from "../../command.js";
import { forEachName } from "./common.js";

/** `vm pause` and `vm resume`: the same call per name, saying when the VM already was in that state. */
function pauseCommand(verb: "pause" | "resume", state: "paused" | "running", summary: string): Command {
  return {
    path: ["vm", verb],
    summary,
    usage: `banger vm ${verb} NAME...`,
    run: (args, ctx) => forEachName(args, ctx, { force: false }, async (name, _force, opId) => {
      const r = await ctx.call(`vm.${verb}`, { name }, 30_000, opId);
      return `${r.vm.name} ${state}${r.changed ? "" : " (it already was)"}`;
    }),
  };
}

export const vmPauseCommand = pauseCommand("pause", "paused", "freeze running VMs: no CPU used; memory, IP and NAME.vm kept (resume with vm resume)");
export const vmResumeCommand = pauseCommand("resume", "running", "thaw paused VMs: they carry on where they stopped");
