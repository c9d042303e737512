import { printJson, UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";

const SHOW_FLAGS = { json: { type: "boolean", description: "print the image as JSON" } } as const satisfies FlagTable;
import { humanBytes } from "./list.js";

export const imageShowCommand: Command = {
  path: ["image", "show"],
  summary: "show one image's files and details",
  usage: "banger image show NAME [--json]",
  flags: SHOW_FLAGS,
  examples: ["banger image show default"],
  completes: "image",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(SHOW_FLAGS, args);
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError("expected exactly one image NAME");
    const img = await ctx.call("image.get", { name });
    if (values.json === true) {
      printJson(ctx.stdout, img);
      return 0;
    }
    const lines: [string, string][] = [
      ["name", img.name], ["flavor", img.flavor], ["source", img.source], ["kernel version", img.kernel_version ?? "-"],
      ["kernel", img.kernel_path], ["vmlinux", img.vmlinux_path ?? "-"], ["initrd", img.initrd_path ?? "-"], ["rootfs", img.rootfs_path],
      ["size", humanBytes(img.size_bytes)], ["created", img.created_at], ["used by", img.used_by.length === 0 ? "-" : img.used_by.join(", ")],
    ];
    const d = img.exec_defaults;
    if (d.user !== null) lines.push(["exec user", d.user]);
    if (d.workdir !== null) lines.push(["exec workdir", d.workdir]);
    for (const [k, v] of d.env) lines.push(["exec env", `${k}=${v}`]);
    for (const [k, v] of lines) ctx.stdout.write(`${k.padEnd(15)} ${v}\n`);
    return 0;
  },
};
