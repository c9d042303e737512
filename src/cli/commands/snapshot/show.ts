import { printJson, UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";

const SHOW_FLAGS = { json: { type: "boolean", description: "print the snapshot as JSON" } } as const satisfies FlagTable;
import { humanBytes } from "../image/list.js";

export const snapshotShowCommand: Command = {
  path: ["snapshot", "show"],
  summary: "show one snapshot",
  usage: "banger snapshot show NAME [--json]",
  flags: SHOW_FLAGS,
  examples: ["banger snapshot show web-1"],
  completes: "snapshot",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(SHOW_FLAGS, args);
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError("expected exactly one snapshot NAME");
    const s = await ctx.call("snapshot.get", { name });
    if (values.json === true) {
      printJson(ctx.stdout, s);
      return 0;
    }
    const lines: [string, string][] = [
      ["name", s.name], ["kind", s.kind], ["state", s.state], ["source VM", s.source_vm], ["image", s.image],
      ["size", `${s.vcpus} vCPUs, ${s.memory_mib} MiB, ${s.disk_gib} GiB disk`], ["vmm", `${s.vmm} (${s.vmm_version || "-"})`],
      ["saved state", humanBytes(s.state_bytes)], ["host key", s.host_key_pub || "-"], ["dir", s.dir], ["created", s.created_at],
    ];
    for (const [k, v] of lines) ctx.stdout.write(`${k.padEnd(12)} ${v}\n`);
    return 0;
  },
};
