import { printJson, UsageError, type Command } from "../../command.js";
import { type FlagTable, JSON_FLAG, parseFlags } from "../../flags.js";
import { formatMs } from "../../progress.js";
import { opIdFor, waitForVm, wholeNumberFlag } from "./common.js";

const FORK_FLAGS = {
  name: { type: "string", value: "NAME", description: "the new VM's name (with --count: the prefix of NAME-1, NAME-2, ...)", default: "NAME-fork-N, the next free N" },
  count: { type: "string", value: "K", description: "how many copies to make", default: 1 },
  json: { ...JSON_FLAG, description: "print {snapshot, vms} as JSON (progress not shown)" },
} as const satisfies FlagTable;

export const vmForkCommand: Command = {
  path: ["vm", "fork"],
  summary: "copy a running VM: K new VMs continue from this instant, each with its own IP, MAC, name, host key and entropy",
  usage: "banger vm fork NAME [--name NAME] [--count K] [--json]",
  flags: FORK_FLAGS,
  examples: ["banger vm fork web", "banger vm fork web --count 3 --name worker"],
  completes: "vm",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(FORK_FLAGS, args);
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
