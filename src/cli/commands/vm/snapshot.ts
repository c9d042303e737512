import { printJson, UsageError, type Command } from "../../command.js";
import { type FlagTable, JSON_FLAG, parseFlags } from "../../flags.js";
import { formatMs } from "../../progress.js";
import { humanBytes } from "../image/list.js";

const SNAPSHOT_FLAGS = {
  name: { type: "string", value: "SNAPSHOT", description: "the snapshot's name", default: "NAME-YYYYMMDD-HHMMSS (UTC)" },
  json: { ...JSON_FLAG, description: "print the snapshot as JSON" },
} as const satisfies FlagTable;

export const vmSnapshotCommand: Command = {
  path: ["vm", "snapshot"],
  summary: "save a running or paused VM's memory, devices and disks at one instant (it keeps running); restore with vm restore",
  usage: "banger vm snapshot NAME [--name SNAPSHOT] [--json]",
  flags: SNAPSHOT_FLAGS,
  examples: ["banger vm snapshot web", "banger vm snapshot web --name before-upgrade"],
  completes: "vm",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(SNAPSHOT_FLAGS, args);
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError("expected exactly one VM NAME");
    const t0 = Date.now();
    const snap = await ctx.call("vm.snapshot", { name, ...(values.name === undefined ? {} : { snapshot: values.name }) }, 300_000);
    if (values.json === true) printJson(ctx.stdout, snap);
    else ctx.stdout.write(`snapshot ${snap.name} of ${name} taken in ${formatMs(Date.now() - t0)} (${humanBytes(snap.state_bytes)} of state); restore with: banger vm restore ${snap.name}\n`);
    return 0;
  },
};
