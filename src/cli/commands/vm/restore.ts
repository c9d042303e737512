import { UsageError, type Command } from "../../command.js";
import { type FlagTable, JSON_FLAG, parseFlags } from "../../flags.js";
import { reportNewVm } from "./common.js";

const RESTORE_FLAGS = {
  name: { type: "string", value: "NAME", description: "the new VM's name", default: "a generated name" },
  "no-wait": { type: "boolean", description: "print the operation id and return at once" },
  json: { ...JSON_FLAG, description: "print the new VM as JSON (progress not shown)" },
} as const satisfies FlagTable;

export const vmRestoreCommand: Command = {
  path: ["vm", "restore"],
  summary: "make a new VM in a snapshot's state (its own IP, MAC, name and host key) and wait until it is ssh-ready",
  usage: "banger vm restore SNAPSHOT [--name NAME] [--no-wait] [--json]",
  flags: RESTORE_FLAGS,
  examples: ["banger vm restore web-1 --name web2"],
  completes: "snapshot",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(RESTORE_FLAGS, args);
    const [snapshot, ...extra] = positionals;
    if (snapshot === undefined || extra.length > 0) throw new UsageError("expected exactly one SNAPSHOT name (see banger snapshot ls)");
    const ref = await ctx.call("vm.restore", { snapshot, ...(values.name === undefined ? {} : { name: values.name }) }, 30_000);
    return reportNewVm(ctx, ref, { json: values.json === true, noWait: values["no-wait"] === true, doing: `restoring ${ref.vm.name} from ${snapshot}`, label: "restore" });
  },
};
