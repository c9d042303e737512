import type { Command } from "../../command.js";
import { forEachName, NAMES_FLAGS } from "./common.js";

/** `vm pause` and `vm resume`: the same call per name, saying when the VM already was in that state. */
function pauseCommand(verb: "pause" | "resume", state: "paused" | "running", summary: string): Command {
  return {
    path: ["vm", verb],
    summary,
    usage: `banger vm ${verb} NAME... [--json]`,
    description: `With --json: an array of {vm, changed} (changed is false when the VM already was ${state}).`,
    flags: NAMES_FLAGS,
    examples: [`banger vm ${verb} web`],
    completes: "vm",
    run: (args, ctx) => forEachName(args, ctx, NAMES_FLAGS, async (name, _force, opId) => {
      const r = await ctx.call(`vm.${verb}`, { name }, 30_000, opId);
      return { line: `${r.vm.name} ${state}${r.changed ? "" : " (it already was)"}`, value: r };
    }),
  };
}

export const vmPauseCommand = pauseCommand("pause", "paused", "freeze running VMs: no CPU used; memory, IP and NAME.vm kept (resume with vm resume)");
export const vmResumeCommand = pauseCommand("resume", "running", "thaw paused VMs: they carry on where they stopped");
