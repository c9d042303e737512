import { printJson, UsageError, type Command } from "../../command.js";
import { type FlagTable, JSON_FLAG, noPositionals, parseFlags } from "../../flags.js";
import { renderTable } from "./common.js";

export const LIST_FLAGS = {
  json: { ...JSON_FLAG, description: "print the list as a JSON array" },
  quiet: { type: "boolean", short: "q", description: "print only the names, one a line (for scripts: banger vm rm $(banger vm ls -q))" },
} as const satisfies FlagTable;

/** The shared shape of list commands: --json and -q, which do not go together. */
export function listFlags(args: readonly string[], command: string): { json: boolean; quiet: boolean } {
  const { values, positionals } = parseFlags(LIST_FLAGS, args);
  noPositionals(positionals, command);
  if (values.json === true && values.quiet === true) throw new UsageError("give --json or -q, not both");
  return { json: values.json === true, quiet: values.quiet === true };
}

export const vmListCommand: Command = {
  path: ["vm", "list"],
  aliases: [["vm", "ls"]],
  summary: "list VMs: name, state, IP, vcpus, memory, image, vmm, uptime",
  usage: "banger vm list|ls [--json | -q]",
  flags: LIST_FLAGS,
  examples: ["banger vm ls", "banger vm ls -q", "banger vm ls --json | jq -r '.[].ip'"],
  async run(args, ctx) {
    const { json, quiet } = listFlags(args, "banger vm list");
    const { vms } = await ctx.call("vm.list", {});
    if (json) printJson(ctx.stdout, vms);
    else if (quiet) ctx.stdout.write(vms.map((v) => `${v.name}\n`).join(""));
    else if (vms.length === 0) ctx.stdout.write("no VMs; create one with: banger vm run\n");
    else ctx.stdout.write(renderTable(vms));
    return 0;
  },
};
