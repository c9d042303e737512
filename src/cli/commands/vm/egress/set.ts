import { parseArgs } from "node:util";
import { UsageError, type Command } from "../../../command.js";
import { egressFlag, isolateFlags } from "../common.js";
import { printEgress } from "./print.js";

export const vmEgressSetCommand: Command = {
  path: ["vm", "egress", "set"],
  summary: "change what a VM may reach, at once if it runs: all, none (only banger's DNS) or allow=LIST of IPv4 addresses, CIDRs and domain names (a domain also allows every name under it, through the addresses banger's DNS resolves for it); --isolate cuts it off from the other VMs; kept across stop/start",
  usage: "banger vm egress set NAME [all|none|allow=LIST] [--isolate|--no-isolate] [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: {
        isolate: { type: "boolean" },
        "no-isolate": { type: "boolean" },
        json: { type: "boolean" },
      },
      strict: true,
      allowPositionals: true,
    });
    const [name, policy, ...rest] = positionals;
    if (name === undefined || rest.length > 0) throw new UsageError("give a VM name and a policy (all, none or allow=LIST), and/or --isolate or --no-isolate");
    const isolate = isolateFlags(values.isolate, values["no-isolate"]);
    if (policy === undefined && isolate === undefined) throw new UsageError("give a policy (all, none or allow=LIST), and/or --isolate or --no-isolate");
    const params: { name: string; policy?: string; isolate?: boolean } = { name };
    if (policy !== undefined) params.policy = egressFlag(policy);
    if (isolate !== undefined) params.isolate = isolate;
    printEgress(ctx, await ctx.call("vm.egress_set", params), values.json === true);
    return 0;
  },
};
