import { DEFAULT_PORT_HOST_IP } from "../../../../model/port-spec.js";
import { UsageError, type Command } from "../../../command.js";
import { parseFlags, type FlagTable } from "../../../flags.js";
import { printPorts } from "./table.js";

const PORT_FLAGS = { json: { type: "boolean", description: "print {name, running, ports} as JSON" } } as const satisfies FlagTable;

const KEY_RE = /^(?:([0-9.]{7,15}):)?([0-9]{1,5})(?::[0-9]{1,5})?(?:\/(tcp|udp))?$/;

export const vmPortRmCommand: Command = {
  path: ["vm", "port", "rm"],
  summary: "unpublish ports of a VM (HOST_IP defaults to 127.0.0.1, proto to tcp)",
  usage: "banger vm port rm NAME [HOST_IP:]HOST_PORT[/tcp|/udp]... [--json]",
  flags: PORT_FLAGS,
  examples: ["banger vm port rm web 8080"],
  completes: "vm",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(PORT_FLAGS, args);
    const [name, ...keys] = positionals;
    if (name === undefined || keys.length === 0) throw new UsageError("give a VM name and at least one HOST_PORT");
    const ports = keys.map((k) => {
      const m = KEY_RE.exec(k);
      if (m === null) throw new UsageError(`${JSON.stringify(k)} is not a published port; want [HOST_IP:]HOST_PORT[/tcp|/udp], as banger vm port ls ${name} shows`);
      // guest_port is not part of a port's identity; the daemon ignores it here.
      return { host_ip: m[1] ?? DEFAULT_PORT_HOST_IP, host_port: Number(m[2]), guest_port: 1, proto: m[3] === "udp" ? "udp" as const : "tcp" as const };
    });
    printPorts(ctx, await ctx.call("vm.port_rm", { name, ports }), values.json === true);
    return 0;
  },
};
