import { daemonPath } from "../../daemon-path.js";
import { printJson, UsageError, type Command } from "../../command.js";
import { noPositionals, parseFlags, type FlagTable } from "../../flags.js";

const IMPORT_FLAGS = {
  name: { type: "string", value: "NAME", description: "the image's name (required)" },
  kernel: { type: "string", value: "BZIMAGE", description: "the kernel to boot (required)" },
  rootfs: { type: "string", value: "EXT4", description: "the ext4 root filesystem image (required); it is copied" },
  initrd: { type: "string", value: "FILE", description: "an initrd to boot with the kernel" },
  flavor: { type: "string", value: "systemd|busybox", description: "what init the rootfs runs", default: "systemd" },
  force: { type: "boolean", description: "replace an image of that name (refused while a VM uses it)" },
  json: { type: "boolean", description: "print the image as JSON" },
} as const satisfies FlagTable;

export const imageImportCommand: Command = {
  path: ["image", "import"],
  summary: "register a kernel (bzImage) + ext4 rootfs you already have as an image",
  usage: "banger image import --name N --kernel BZIMAGE --rootfs EXT4 [--initrd FILE] [--flavor systemd|busybox] [--force] [--json]",
  flags: IMPORT_FLAGS,
  examples: ["banger image import --name mine --kernel ./bzImage --rootfs ./rootfs.ext4"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(IMPORT_FLAGS, args);
    noPositionals(positionals, "banger image import");
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
