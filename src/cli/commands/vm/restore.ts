import { parseArgs } from "node:util";
import { UsageError, type Command } from "../../command.js";
import { reportNewVm } from "./common.js";

export const vmRestoreCommand: Command = {
  path: ["vm", "restore"],
  summary: "make a new VM in a snapshot's state (its own IP, MAC, name and host key) and wait until it is ssh-ready",
  usage: "banger vm restore SNAPSHOT [--name N] [--no-wait] [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { name: { type: "string" }, "no-wait": { type: "boolean" }, json: { type: "boolean" } }, strict: true, allowPositionals: true });
    const [snapshot, ...extra] = positionals;
    if (snapshot === undefined || extra.length > 0) throw new UsageError("expected exactly one SNAPSHOT name (see banger snapshot ls)");
    const ref = await ctx.call("vm.restore", { snapshot, ...(values.name === undefined ? {} : { name: values.name }) }, 30_000);
    return reportNewVm(ctx, ref, { json: values.json === true, noWait: values["no-wait"] === true, doing: `restoring ${ref.vm.name} from ${snapshot}`, label: "restore" });
  },
};
