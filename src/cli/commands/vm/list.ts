import { parseArgs } from "node:util";
import { printJson, type Command } from "../../command.js";
import { renderTable } from "./common.js";

export const vmListCommand: Command = {
  path: ["vm", "list"],
  aliases: [["vm", "ls"]],
  summary: "list VMs: name, state, IP, vcpus, memory, image, vmm, uptime",
  usage: "banger vm list|ls [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({ args: [...args], options: { json: { type: "boolean" } }, strict: true });
    const { vms } = await ctx.call("vm.list", {});
    if (values.json === true) printJson(ctx.stdout, vms);
    else if (vms.length === 0) ctx.stdout.write("no VMs; create one with: banger vm run\n");
    else ctx.stdout.write(renderTable(vms));
    return 0;
  },
};
