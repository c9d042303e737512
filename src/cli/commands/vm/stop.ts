import type { Command } from "../../command.js";
import { JSON_FLAG } from "../../flags.js";
import type { FlagTable } from "../../flags.js";
import { ALL_FLAG, forEachName } from "./common.js";

// Graceful stop may take the configured stop timeout (up to 600 s) before the kill.
const STOP_CALL_TIMEOUT_MS = 660_000;

const STOP_FLAGS = {
  force: { type: "boolean", short: "f", description: "kill the VMM at once instead of asking the guest to shut down" },
  all: { ...ALL_FLAG, description: "stop every running VM, instead of names" },
  json: JSON_FLAG,
} as const satisfies FlagTable;

const DELETE_FLAGS = {
  force: { type: "boolean", short: "f", description: "also delete running or stuck VMs (they are killed first)" },
  all: { ...ALL_FLAG, description: "delete every VM, instead of names" },
  json: JSON_FLAG,
} as const satisfies FlagTable;

export const vmStopCommand: Command = {
  path: ["vm", "stop"],
  summary: "stop VMs gracefully (killed after the stop timeout); a stopped VM is left as it is (exit 0)",
  usage: "banger vm stop NAME...|--all [--force] [--json]",
  description: "The guest is asked to power off and is killed after the config's vmm.stop_timeout_s; --force kills at once. Disks, IP and NAME.vm are kept: vm start boots it again. With --json: an array of the stopped VMs.",
  flags: STOP_FLAGS,
  examples: ["banger vm stop web", "banger vm stop --force web db"],
  completes: "vm",
  run: (args, ctx) => forEachName(args, ctx, STOP_FLAGS, async (name, force, opId) => {
    const vm = await ctx.call("vm.stop", { name, ...(force ? { force } : {}) }, STOP_CALL_TIMEOUT_MS, opId);
    return { line: vm.changed === false ? `${vm.name} was already stopped` : `${vm.name} ${vm.state}`, value: vm };
  }, { which: (v) => ["running", "paused", "error"].includes(v.state), none: "no running VMs to stop" }),
};

export const vmDeleteCommand: Command = {
  path: ["vm", "delete"],
  aliases: [["vm", "rm"]],
  summary: "delete VMs and everything they own; --force also deletes running or stuck VMs",
  usage: "banger vm delete|rm NAME...|--all [--force] [--json]",
  description: "Removes the VM's disks, lease, tap, published ports and record. With --json: an array of {name, deleted}.",
  flags: DELETE_FLAGS,
  examples: ["banger vm rm web", "banger vm rm -f $(banger vm ls -q)"],
  completes: "vm",
  run: (args, ctx) => forEachName(args, ctx, DELETE_FLAGS, async (name, force, opId) => {
    const r = await ctx.call("vm.delete", { name, ...(force ? { force } : {}) }, STOP_CALL_TIMEOUT_MS, opId);
    return { line: `${r.name} deleted`, value: r };
  }, { which: () => true, none: "no VMs to delete" }),
};
