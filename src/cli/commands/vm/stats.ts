import { parseArgs } from "node:util";
import { printJson, UsageError, type Command } from "../../command.js";
import { formatUptime } from "./common.js";

function mib(bytes: number | null): string {
  return bytes === null ? "-" : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export const vmStatsCommand: Command = {
  path: ["vm", "stats"],
  summary: "CPU %, memory (RSS) and disk use of a VM",
  usage: "banger vm stats NAME [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { json: { type: "boolean" } }, strict: true, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError("give exactly one VM name");
    const s = await ctx.call("vm.stats", { name: positionals[0] ?? "" });
    if (values.json === true) {
      printJson(ctx.stdout, s);
      return 0;
    }
    const rows: [string, string][] = [
      ["name", `${s.name} (${s.state})`],
      ["cpu", s.cpu_percent === null ? "-" : `${(s.cpu_percent_recent ?? 0).toFixed(1)} % of one core now, ${s.cpu_percent.toFixed(1)} % on average since start (${s.vcpus} vcpus)`],
      ["memory", `${mib(s.rss_bytes)} RSS of ${s.memory_mib} MiB`],
      ["root disk", `${mib(s.disk.root_allocated_bytes)} allocated`],
      ["work disk", `${mib(s.disk.work_allocated_bytes)} allocated of ${mib(s.disk.work_size_bytes)}`],
      ["uptime", formatUptime(s.uptime_s)],
    ];
    for (const [k, v] of rows) ctx.stdout.write(`${(k + ":").padEnd(11)}${v}\n`);
    return 0;
  },
};
