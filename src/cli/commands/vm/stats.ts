import { printJson, UsageError, type Command } from "../../command.js";
import { type FlagTable, JSON_FLAG, parseFlags } from "../../flags.js";
import { formatUptime } from "./common.js";

const STATS_FLAGS = { json: { ...JSON_FLAG, description: "print the figures as JSON" } } as const satisfies FlagTable;

function mib(bytes: number | null): string {
  return bytes === null ? "-" : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export const vmStatsCommand: Command = {
  path: ["vm", "stats"],
  summary: "CPU %, memory and disk use of a VM: what the guest itself uses next to what its VMM holds on the host",
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
    const guestDisk = (mount: string): string => {
      const d = s.guest?.disks.find((x) => x.mount === mount);
      return d === undefined ? "" : `${mib(d.used_bytes)} used of ${mib(d.size_bytes)} in the guest (${mount}); `;
    };
    const rows: [string, string][] = [
      ["name", `${s.name} (${s.state})`],
      ["cpu", s.cpu_percent === null ? "-" : `${(s.cpu_percent_recent ?? 0).toFixed(1)} % of one core now, ${s.cpu_percent.toFixed(1)} % on average since start (${s.vcpus} vcpus)`],
      ["guest mem", s.guest === null ? `- (${s.guest_error ?? "not read"})` : `${mib(s.guest.memory.used_bytes)} used of ${mib(s.guest.memory.total_bytes)}, ${mib(s.guest.memory.available_bytes)} available: what the guest's kernel reports (MemTotal - MemAvailable), the memory its programs need`],
      ["host RSS", `${mib(s.rss_bytes)} of ${s.memory_mib} MiB: host memory the VMM holds, guest RAM it has ever touched (the guest's page cache and freed pages included) plus the VMM's own`],
      ["root disk", `${guestDisk("/")}${mib(s.disk.root_allocated_bytes)} allocated on the host`],
      ["work disk", `${guestDisk("/root")}${mib(s.disk.work_allocated_bytes)} allocated on the host of ${mib(s.disk.work_size_bytes)}`],
      ["uptime", formatUptime(s.uptime_s)],
    ];
    for (const [k, v] of rows) ctx.stdout.write(`${(k + ":").padEnd(11)}${v}\n`);
    return 0;
  },
};
