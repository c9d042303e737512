import { parseArgs } from "node:util";
import { printJson, UsageError, type Command } from "../../command.js";
import { formatMs } from "../../progress.js";
import { wholeNumberFlag as int } from "../vm/common.js";

export const imageWarmCommand: Command = {
  path: ["image", "warm"],
  summary: "boot an image once and keep it ready: vm create/run of that image and size then restore in well under a second (--cold boots anyway)",
  usage: "banger image warm NAME [--vcpus N] [--memory MIB] [--disk GIB] [--json]",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { vcpus: { type: "string" }, memory: { type: "string" }, disk: { type: "string" }, json: { type: "boolean" } }, strict: true, allowPositionals: true });
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError("expected exactly one image NAME");
    const size = { vcpus: int("vcpus", values.vcpus), memory_mib: int("memory", values.memory), disk_gib: int("disk", values.disk) };
    const params = { name, ...Object.fromEntries(Object.entries(size).filter(([, v]) => v !== undefined)) };
    if (values.json !== true) ctx.stderr.write(`booting ${name} for its warm template\n`);
    const t0 = Date.now();
    const snap = await ctx.call("image.warm", params, 900_000);
    if (values.json === true) printJson(ctx.stdout, snap);
    else ctx.stdout.write(`image ${name} is warm (${snap.vcpus} vCPUs, ${snap.memory_mib} MiB, ${snap.disk_gib} GiB; took ${formatMs(Date.now() - t0)}): vm create --image ${name} now restores from ${snap.name}\n`);
    return 0;
  },
};
