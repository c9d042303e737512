import { printJson, UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";
import { formatUptime, JSON_FLAG } from "./common.js";

const STATS_FLAGS = { json: { ...JSON_FLAG, description: "print the figures as JSON" } } as const satisfies FlagTable;

function mib(bytes: number | null): string {
  return bytes === null ? "-" : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export const vmStatsCommand: Command = {
  path: ["vm", "stats"],
  summary: "CPU %, memory (RSS) and disk use of a VM",
  usage: "banger vm stats NAME [--json]",
  flags: STATS_FLAGS,
  examples: ["banger vm stats web"],
  completes: "vm",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(STATS_FLAGS, args);
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
