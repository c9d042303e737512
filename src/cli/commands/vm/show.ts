import { printJson, UsageError, type Command } from "../../command.js";
import { type FlagTable, JSON_FLAG, parseFlags } from "../../flags.js";
import { formatUptime } from "./common.js";

const SHOW_FLAGS = { json: { ...JSON_FLAG, description: "print the VM as JSON" } } as const satisfies FlagTable;

export const vmShowCommand: Command = {
  path: ["vm", "show"],
  summary: "show one VM's details",
  usage: "banger vm show NAME [--json]",
  flags: SHOW_FLAGS,
  examples: ["banger vm show web", "banger vm show web --json | jq -r .ip"],
  completes: "vm",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(SHOW_FLAGS, args);
    if (positionals.length !== 1) throw new UsageError("give exactly one VM name");
    const vm = await ctx.call("vm.get", { name: positionals[0] ?? "" });
    if (values.json === true) {
      printJson(ctx.stdout, vm);
      return 0;
    }
    const rows: [string, string][] = [
      ["name", `${vm.name} (${vm.dns_name})`],
      ["id", vm.id],
      ["state", vm.state],
      ["ip", vm.ip ?? "-"],
      ["mac", vm.mac ?? "-"],
      ["tap", vm.tap ?? "-"],
      ["image", vm.image],
      ["vmm", `${vm.vmm}${vm.pid !== null ? ` (pid ${vm.pid})` : ""}`],
      ["vcpus", String(vm.vcpus)],
      ["memory", `${vm.memory_mib} MiB`],
      ["disk", `${vm.disk_gib} GiB`],
      ["created", vm.created_at],
      ["uptime", formatUptime(vm.uptime_s)],
      ["console", vm.console_log ?? "-"],
      ["egress", `${vm.egress.policy}${vm.egress.isolate ? ", isolated from other VMs" : ""}`],
      ["ports", vm.ports.length === 0 ? "-" : vm.ports.map((p) => `${p.host_ip}:${p.host_port}->${p.guest_port}/${p.proto}`).join(", ")],
    ];
    if (vm.last_error !== null) rows.push(["last error", vm.last_error]);
    for (const [k, v] of rows) ctx.stdout.write(`${(k + ":").padEnd(12)}${v}\n`);
    return 0;
  },
};
