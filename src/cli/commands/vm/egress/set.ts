import { UsageError, type Command } from "../../../command.js";
import { type FlagTable, JSON_FLAG, parseFlags } from "../../../flags.js";
import { egressFlag, isolateFlags } from "../common.js";
import { printEgress } from "./print.js";

const SET_FLAGS = {
  isolate: { type: "boolean", description: "cut the VM off from the other VMs on the bridge" },
  "no-isolate": { type: "boolean", description: "let the VM reach the other VMs again" },
  json: JSON_FLAG,
} as const satisfies FlagTable;

export const vmEgressSetCommand: Command = {
  path: ["vm", "egress", "set"],
  summary: "change what a VM may reach, at once if it runs (kept across stop/start)",
  description: "POLICY is all, none (only banger's DNS) or allow=LIST of IPv4 addresses, CIDRs and domain names; a domain also allows every name under it, through the addresses banger's DNS resolves for it. --isolate cuts the VM off from the other VMs on the bridge.",
  usage: "banger vm egress set NAME [all|none|allow=LIST] [--isolate|--no-isolate] [--json]",
  flags: SET_FLAGS,
  completes: "vm",
  examples: ["banger vm egress set web allow=deb.debian.org,10.0.0.0/8", "banger vm egress set web none --isolate"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(SET_FLAGS, args);
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
