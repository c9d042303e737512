import { parseArgs } from "node:util";
import { printJson, UsageError, type Command } from "../../command.js";
import { formatMs } from "../../progress.js";
import { waitForVm } from "./common.js";

export const vmRestoreCommand: Command = {
  path: ["vm", "restore"],
  summary: "make a new VM in a snapshot's state (its own IP, MAC, name and host key) and wait until it is ssh-ready",
  usage: "banger vm restore SNAPSHOT [--name N] [--no-wait] [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { name: { type: "string" }, "no-wait": { type: "boolean" }, json: { type: "boolean" } }, strict: true, allowPositionals: true });
    const [snapshot, ...extra] = positionals;
    if (snapshot === undefined || extra.length > 0) throw new UsageError("expected exactly one SNAPSHOT name (see banger snapshot ls)");
    const json = values.json === true;
    const ref = await ctx.call("vm.restore", { snapshot, ...(values.name === undefined ? {} : { name: values.name }) }, 30_000);
    if (values["no-wait"] === true) {
      if (json) printJson(ctx.stdout, ref);
      else ctx.stdout.write(`${ref.operation_id}\n`);
      return 0;
    }
    if (!json) ctx.stderr.write(`restoring ${ref.vm.name} from ${snapshot} (${ref.operation_id})\n`);
    const t0 = Date.now();
    const vm = await waitForVm(ctx, ref.operation_id, ref.vm.name, "restore", { quiet: json });
    if (vm === undefined) return 1;
    if (json) printJson(ctx.stdout, vm);
    else {
      ctx.stderr.write(`ready in ${formatMs(Date.now() - t0)}\n`);
      ctx.stdout.write(`${vm.name} is running at ${vm.ip ?? "?"} (${vm.dns_name}); connect with: banger vm ssh ${vm.name}\n`);
    }
    return 0;
  },
};
