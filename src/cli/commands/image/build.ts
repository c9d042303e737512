import { printJson, type CliContext, type Command } from "../../command.js";
import { daemonPath } from "../../daemon-path.js";
import { noPositionals, parseFlags, type FlagTable } from "../../flags.js";
import { endInterrupted, followInterruptible } from "../../interrupt.js";
import { formatMs } from "../../progress.js";

/** Paths are resolved here, against the user's cwd: the daemon has its own. */
function absolute(ctx: CliContext, flag: string, p: string | undefined): string | undefined {
  return p === undefined ? undefined : daemonPath(ctx, flag, p);
}

/**
 * "busybox" and "scheme:thing" are source names for the daemon to judge; oci-archive:PATH and a bare
 * path are resolved here, against the user's cwd (or must be absolute on a context's host).
 */
export function fromValue(ctx: CliContext, from: string | undefined): string | undefined {
  if (from?.startsWith("oci-archive:") === true) return `oci-archive:${daemonPath(ctx, "from", from.slice("oci-archive:".length))}`;
  return from === undefined || from === "busybox" || /^[a-z]+:/.test(from) ? from : daemonPath(ctx, "from", from);
}

const BUILD_FLAGS = {
  name: { type: "string", value: "NAME", description: "the image's name (1-63 lowercase letters, digits or '-'); --from busybox defaults to tiny, a DIR or TAR needs one", defaultFrom: "defaults.image" },
  from: { type: "string", value: "SOURCE", description: "debian:bookworm, busybox (the tiny test image), oci-archive:PATH (a docker save tarball or an OCI image layout directory), a root filesystem directory, or a tar of one", default: "debian:bookworm" },
  kernel: { type: "string", value: "BZIMAGE", description: "boot this kernel instead of the one the source provides" },
  initrd: { type: "string", value: "FILE", description: "an initrd to boot with --kernel" },
  force: { type: "boolean", description: "replace an image of that name (refused while a VM uses it)" },
  detach: { type: "boolean", description: "on Ctrl-C leave the build running in the daemon (and say how to follow it) instead of cancelling it" },
  json: { type: "boolean", description: "print the image as JSON (progress not shown)" },
} as const satisfies FlagTable;

export const imageBuildCommand: Command = {
  path: ["image", "build"],
  summary: "build an image (default: Debian bookworm as 'default'; --from busybox: the tiny test image); Ctrl-C cancels it, unless --detach",
  usage: "banger image build [--name NAME] [--from debian:bookworm|busybox|oci-archive:PATH|DIR|TAR] [--kernel BZIMAGE] [--initrd FILE] [--force] [--detach] [--json]",
  flags: BUILD_FLAGS,
  examples: ["banger image build", "banger image build --from busybox --name tiny", "banger image build --from ./rootfs.tar --name mine", "banger image build --from oci-archive:./app.tar --name app"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(BUILD_FLAGS, args);
    noPositionals(positionals, "banger image build");
    const from = fromValue(ctx, values.from);
    const ref = await ctx.call("image.build", { name: values.name, from, kernel: absolute(ctx, "kernel", values.kernel), initrd: absolute(ctx, "initrd", values.initrd), force: values.force }, 30_000);
    const json = values.json === true;
    if (!json) ctx.stderr.write(`building image ${ref.image} (${ref.operation_id})\n`);
    const outcome = await followInterruptible(ctx, ref.operation_id, `image ${ref.image}`, { quiet: json, detach: values.detach === true });
    const op = outcome.op;
    if (outcome.interrupted !== undefined || op === undefined) endInterrupted(ctx, outcome, `building image ${ref.image}`, `remove it with: banger image rm ${ref.image}`);
    if (op.state !== "succeeded") {
      ctx.stderr.write(`image build failed: ${op.error ?? "unknown error"}\n`);
      return 1;
    }
    const img = await ctx.call("image.get", { name: ref.image });
    if (json) printJson(ctx.stdout, img);
    else ctx.stdout.write(`image ${img.name} ready in ${formatMs(Math.max(0, Date.parse(op.updated_at) - Date.parse(op.created_at)))} (${img.flavor}, kernel ${img.kernel_version ?? "?"})\n`);
    return 0;
  },
};
