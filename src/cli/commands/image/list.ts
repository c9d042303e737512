import { parseArgs } from "node:util";
import type { ImageView } from "../../../rpc/daemon/image.js";
import { printJson, type Command } from "../../command.js";

export function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i] ?? "B"}`;
}

export function renderImages(images: readonly ImageView[]): string {
  const rows = [["NAME", "FLAVOR", "SOURCE", "KERNEL", "SIZE", "CREATED", "USED BY"],
    ...images.map((i) => [i.name, i.flavor, i.source, i.kernel_version ?? "-", humanBytes(i.size_bytes), i.created_at.slice(0, 19).replace("T", " "), i.used_by.length === 0 ? "-" : i.used_by.join(",")])];
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join("  ").trimEnd()).join("\n") + "\n";
}

export const imageListCommand: Command = {
  path: ["image", "list"],
  aliases: [["image", "ls"]],
  summary: "list images",
  usage: "banger image list|ls [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({ args: [...args], options: { json: { type: "boolean" } }, strict: true });
    const { images } = await ctx.call("image.list", {});
    if (values.json === true) printJson(ctx.stdout, images);
    else if (images.length === 0) ctx.stdout.write("no images; build the default one with: banger image build\n");
    else ctx.stdout.write(renderImages(images));
    return 0;
  },
};
