import type { Command } from "../../command.js";
import { forEachName } from "./common.js";

export const vmPauseCommand: Command = {
  path: ["vm", "pause"],
  summary: "freeze running VMs: no CPU used; memory, IP and NAME.vm kept (resume with vm resume)",
  usage: "banger vm pause NAME...",
  run: (args, ctx) => forEachName(args, ctx, { force: false }, async (name, _force, opId) => {
    const r = await ctx.call("vm.pause", { name }, 30_000, opId);
    return `${r.vm.name} paused${r.changed ? "" : " (it already was)"}`;
  }),
};

export const vmResumeCommand: Command = {
  path: ["vm", "resume"],
  summary: "thaw paused VMs: they carry on where they stopped",
  usage: "banger vm resume NAME...",
  run: (args, ctx) => forEachName(args, ctx, { force: false }, async (name, _force, opId) => {
    const r = await ctx.call("vm.resume", { name }, 30_000, opId);
    return `${r.vm.name} running${r.changed ? "" : " (it already was)"}`;
  }),
};
