import type { Command } from "../../command.js";
import { forEachName } from "./common.js";

// Graceful stop may take the configured stop timeout (up to 600 s) before the kill.
const STOP_CALL_TIMEOUT_MS = 660_000;

export const vmStopCommand: Command = {
  path: ["vm", "stop"],
  summary: "stop VMs gracefully (killed after the stop timeout); --force kills at once",
  usage: "banger vm stop NAME... [--force]",
  run: (args, ctx) => forEachName(args, ctx, { force: true }, async (name, force, opId) => {
    const vm = await ctx.call("vm.stop", { name, ...(force ? { force } : {}) }, STOP_CALL_TIMEOUT_MS, opId);
    return `${vm.name} ${vm.state}`;
  }),
};

export const vmDeleteCommand: Command = {
  path: ["vm", "delete"],
  aliases: [["vm", "rm"]],
  summary: "delete VMs and everything they own; --force also deletes running or stuck VMs",
  usage: "banger vm delete|rm NAME... [--force]",
  run: (args, ctx) => forEachName(args, ctx, { force: true }, async (name, force, opId) => {
    const r = await ctx.call("vm.delete", { name, ...(force ? { force } : {}) }, STOP_CALL_TIMEOUT_MS, opId);
    return `${r.name} deleted`;
  }),
};
