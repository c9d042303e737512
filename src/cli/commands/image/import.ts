import { parseArgs } from "node:util";
import { printJson, UsageError, type Command } from "../../command.js";
import { daemonPath } from "../../daemon-path.js";

export const imageImportCommand: Command = {
  path: ["image", "import"],
  summary: "register a kernel (bzImage) + ext4 rootfs you already have as an image",
  usage: "banger image import --name N --kernel BZIMAGE --rootfs EXT4 [--initrd FILE] [--flavor systemd|busybox] [--force] [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({
      args: [...args], strict: true,
      options: { name: { type: "string" }, kernel: { type: "string" }, rootfs: { type: "string" }, initrd: { type: "string" }, flavor: { type: "string" }, force: { type: "boolean" }, json: { type: "boolean" } },
    });
    if (values.name === undefined || values.kernel === undefined || values.rootfs === undefined) throw new UsageError("--name, --kernel and --rootfs are required");
    const flavor = values.flavor;
    if (flavor !== undefined && flavor !== "systemd" && flavor !== "busybox") throw new UsageError("--flavor must be systemd or busybox");
    const img = await ctx.call("image.import", {
      name: values.name, kernel: daemonPath(ctx, "kernel", values.kernel), rootfs: daemonPath(ctx, "rootfs", values.rootfs),
      initrd: values.initrd === undefined ? undefined : daemonPath(ctx, "initrd", values.initrd), flavor, force: values.force,
    }, 30 * 60_000);
    if (values.json === true) printJson(ctx.stdout, img);
    else ctx.stdout.write(`imported image ${img.name} (kernel ${img.kernel_version ?? "?"})\n`);
    return 0;
  },
};
