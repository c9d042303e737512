import { parseArgs } from "node:util";
import { printJson, UsageError, type Command } from "../../command.js";
import { formatMs } from "../../progress.js";
import { humanBytes } from "../image/list.js";

export const vmSnapshotCommand: Command = {
  path: ["vm", "snapshot"],
  summary: "save a running or paused VM's memory, devices and disks at one instant (it keeps running); restore with vm restore",
  usage: "banger vm snapshot NAME [--name SNAPSHOT] [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { name: { type: "string" }, json: { type: "boolean" } }, strict: true, allowPositionals: true });
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError("expected exactly one VM NAME");
    const t0 = Date.now();
    const snap = await ctx.call("vm.snapshot", { name, ...(values.name === undefined ? {} : { snapshot: values.name }) }, 300_000);
    if (values.json === true) printJson(ctx.stdout, snap);
    else ctx.stdout.write(`snapshot ${snap.name} of ${name} taken in ${formatMs(Date.now() - t0)} (${humanBytes(snap.state_bytes)} of state); restore with: banger vm restore ${snap.name}\n`);
    return 0;
  },
};
