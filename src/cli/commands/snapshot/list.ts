import type { SnapshotView } from "../../../rpc/daemon/snapshot.js";
import { printJson, type Command } from "../../command.js";
import { LIST_FLAGS, listFlags } from "../vm/list.js";
import { humanBytes } from "../image/list.js";

export function renderSnapshots(snaps: readonly SnapshotView[]): string {
  const header = ["NAME", "KIND", "SOURCE", "IMAGE", "VCPUS", "MEMORY", "STATE SIZE", "CREATED"];
  const rows = snaps.map((s) => [s.name, s.kind, s.source_vm, s.image, String(s.vcpus), `${s.memory_mib} MiB`, s.state === "ready" ? humanBytes(s.state_bytes) : "(saving)", s.created_at]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ")).join("\n") + "\n";
}

export const snapshotListCommand: Command = {
  path: ["snapshot", "ls"],
  summary: "list snapshots (vm snapshot), and images' warm templates (image warm)",
  usage: "banger snapshot ls [--json | -q]",
  flags: LIST_FLAGS,
  examples: ["banger snapshot ls", "banger snapshot rm $(banger snapshot ls -q)"],
  async run(args, ctx) {
    const { json, quiet } = listFlags(args, "banger snapshot ls");
    const { snapshots } = await ctx.call("snapshot.list", {});
    if (json) printJson(ctx.stdout, snapshots);
    else if (quiet) ctx.stdout.write(snapshots.map((s) => `${s.name}\n`).join(""));
    else if (snapshots.length === 0) ctx.stdout.write("no snapshots; take one with: banger vm snapshot NAME\n");
    else ctx.stdout.write(renderSnapshots(snapshots));
    return 0;
  },
};
