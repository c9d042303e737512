import { parseArgs } from "node:util";
import { printJson, UsageError, type Command } from "../../command.js";
import { formatMs } from "../../progress.js";
import { opIdFor, waitForVm, wholeNumberFlag } from "./common.js";

export const vmForkCommand: Command = {
  path: ["vm", "fork"],
  summary: "copy a running VM: K new VMs continue from this instant, each with its own IP, MAC, name, host key and entropy",
  usage: "banger vm fork NAME [--name N] [--count K] [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { name: { type: "string" }, count: { type: "string" }, json: { type: "boolean" } }, strict: true, allowPositionals: true });
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError("expected exactly one VM NAME");
    const count = wholeNumberFlag("count", values.count);
    const json = values.json === true;
    const t0 = Date.now();
    const r = await ctx.call("vm.fork", { name, ...(values.name === undefined ? {} : { fork_name: values.name }), ...(count === undefined ? {} : { count }) }, 300_000);
    if (!json) ctx.stderr.write(`forking ${name} into ${r.operations.map((o) => o.vm.name).join(", ")}\n`);
    // Each copy is its own operation; they run side by side, so wait for all of them together.
    const vms = await Promise.all(r.operations.map((o, i) => waitForVm(ctx, o.operation_id, o.vm.name, "fork", { quiet: true, opId: opIdFor(ctx, i + 1) })));
    const ok = vms.flatMap((v) => (v === undefined ? [] : [v]));
    if (json) printJson(ctx.stdout, { snapshot: r.snapshot, vms: ok });
    else {
      ctx.stderr.write(`${ok.length} of ${vms.length} ready in ${formatMs(Date.now() - t0)}\n`);
      for (const vm of ok) ctx.stdout.write(`${vm.name} is running at ${vm.ip ?? "?"} (${vm.dns_name})\n`);
    }
    return ok.length === vms.length ? 0 : 1;
  },
};
