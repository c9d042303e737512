import type { Command } from "../../command.js";
import { forEachName } from "./common.js";

// Graceful stop may take the configured stop timeout (up to 600 s) before the kill.
const STOP_CALL_TIMEOUT_MS = 660_000;

export const vmStopCommand: Command = {
  path: ["vm", "stop"],
  summary: "stop VMs gracefully (killed after the stop timeout); --force kills at once; --all stops every running VM; a stopped VM is left as it is (exit 0)",
  usage: "banger vm stop NAME...|--all [--force]",
  run: (args, ctx) => forEachName(args, ctx, { force: true, all: { which: (v) => ["running", "paused", "error"].includes(v.state), none: "no running VMs to stop" } }, async (name, force, opId) => {
    const vm = await ctx.call("vm.stop", { name, ...(force ? { force } : {}) }, STOP_CALL_TIMEOUT_MS, opId);
    return vm.changed === false ? `${vm.name} was already stopped` : `${vm.name} ${vm.state}`;
  }),
};

export const vmDeleteCommand: Command = {
  path: ["vm", "delete"],
  aliases: [["vm", "rm"]],
  summary: "delete VMs and everything they own; --force also deletes running or stuck VMs; --all: every VM",
  usage: "banger vm delete|rm NAME...|--all [--force]",
  run: (args, ctx) => forEachName(args, ctx, { force: true, all: { which: () => true, none: "no VMs to delete" } }, async (name, force, opId) => {
    const r = await ctx.call("vm.delete", { name, ...(force ? { force } : {}) }, STOP_CALL_TIMEOUT_MS, opId);
    return `${r.name} deleted`;
  }),
};
