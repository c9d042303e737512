import { UsageError, type Command } from "../../../command.js";
import { parseFlags, type FlagTable } from "../../../flags.js";
import { portsFromSpecs } from "../common.js";
import { printPorts } from "./table.js";

const PORT_FLAGS = { json: { type: "boolean", description: "print {name, running, ports} as JSON" } } as const satisfies FlagTable;

export const vmPortAddCommand: Command = {
  path: ["vm", "port", "add"],
  summary: "publish guest ports on the host (HOST_IP defaults to 127.0.0.1, this host only; another address makes the port reachable from other hosts); kept across stop/start",
  usage: "banger vm port add NAME [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]... [--json]",
  flags: PORT_FLAGS,
  examples: ["banger vm port add web 8080:80", "banger vm port add web 0.0.0.0:5353:53/udp"],
  completes: "vm",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(PORT_FLAGS, args);
    const [name, ...specs] = positionals;
    if (name === undefined || specs.length === 0) throw new UsageError("give a VM name and at least one HOST_PORT:GUEST_PORT");
    printPorts(ctx, await ctx.call("vm.port_add", { name, ports: portsFromSpecs(specs) }), values.json === true);
    return 0;
  },
};
