import { printJson, UsageError, type Command } from "../../command.js";
import { JSON_FLAG, parseFlags, type FlagTable } from "../../flags.js";
import { wholeNumberFlag } from "./common.js";

const RESIZE_FLAGS = {
  root: { type: "string", value: "GIB", description: "the root disk's new size in GiB" },
  work: { type: "string", value: "GIB", description: "the work disk's (/root) new size in GiB" },
  json: { ...JSON_FLAG, description: "print the resized VM as JSON (as vm show --json)" },
} as const satisfies FlagTable;

export const vmResizeCommand: Command = {
  path: ["vm", "resize"],
  summary: "grow a stopped VM's root disk and/or work disk (/root) to GIB, filesystem included; disks only grow; start it again to use the space",
  usage: "banger vm resize NAME [--root GIB] [--work GIB] [--json]",
  flags: RESIZE_FLAGS,
  completes: "vm",
  examples: ["banger vm resize web --work 20", "banger vm resize web --root 8 --work 20"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(RESIZE_FLAGS, args);
    if (positionals.length !== 1) throw new UsageError("give exactly one VM name");
    const rootGib = wholeNumberFlag("root", values.root);
    const workGib = wholeNumberFlag("work", values.work);
    if (rootGib === undefined && workGib === undefined) throw new UsageError("give --root GIB, --work GIB or both");
    const vm = await ctx.call("vm.resize", { name: positionals[0] ?? "", ...(rootGib !== undefined ? { root_gib: rootGib } : {}), ...(workGib !== undefined ? { work_gib: workGib } : {}) }, 30 * 60_000);
    if (values.json === true) {
      printJson(ctx.stdout, vm);
      return 0;
    }
    ctx.stdout.write(`${vm.name} resized${rootGib !== undefined ? `: root disk ${rootGib} GiB` : ""}${workGib !== undefined ? `${rootGib !== undefined ? "," : ":"} work disk ${vm.disk_gib} GiB` : ""}; start it with: banger vm start ${vm.name}\n`);
    return 0;
  },
};
