import { printJson, UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";
import { formatMs } from "../../progress.js";
import { CREATE_OPTIONS, wholeNumberFlag as int } from "../vm/common.js";

const WARM_FLAGS = {
  vcpus: CREATE_OPTIONS.vcpus,
  memory: CREATE_OPTIONS.memory,
  disk: CREATE_OPTIONS.disk,
  json: { type: "boolean", description: "print the warm template (a snapshot) as JSON" },
} as const satisfies FlagTable;

export const imageWarmCommand: Command = {
  path: ["image", "warm"],
  summary: "boot an image once and keep it ready: vm create/run of that image and size then restore in well under a second (--cold boots anyway)",
  usage: "banger image warm NAME [--vcpus N] [--memory MIB] [--disk GIB] [--json]",
  description: "Only creates of the same size as the template restore from it; the sizes default as vm create's do.",
  flags: WARM_FLAGS,
  examples: ["banger image warm default", "banger image warm default --memory 2048"],
  completes: "image",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(WARM_FLAGS, args);
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError("expected exactly one image NAME");
    const size = { vcpus: int("vcpus", values.vcpus), memory_mib: int("memory", values.memory, "MiB"), disk_gib: int("disk", values.disk, "GiB") };
    const params = { name, ...Object.fromEntries(Object.entries(size).filter(([, v]) => v !== undefined)) };
    if (values.json !== true) ctx.stderr.write(`booting ${name} for its warm template\n`);
    const t0 = Date.now();
    const snap = await ctx.call("image.warm", params, 900_000);
    if (values.json === true) printJson(ctx.stdout, snap);
    else ctx.stdout.write(`image ${name} is warm (${snap.vcpus} vCPUs, ${snap.memory_mib} MiB, ${snap.disk_gib} GiB; took ${formatMs(Date.now() - t0)}): vm create --image ${name} now restores from ${snap.name}\n`);
    return 0;
  },
};
