import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { printJson, type Command } from "../../command.js";
import { endInterrupted, followInterruptible } from "../../interrupt.js";
import { formatMs } from "../../progress.js";

/** Paths are resolved here, against the user's cwd: the daemon has its own. */
function absolute(p: string | undefined): string | undefined {
  return p === undefined ? undefined : resolve(p);
}

export const imageBuildCommand: Command = {
  path: ["image", "build"],
  summary: "build an image (default: Debian bookworm as 'default'; --from busybox: the tiny test image); Ctrl-C cancels it, unless --detach",
  usage: "banger image build [--name N] [--from debian:bookworm|busybox|DIR|TAR] [--kernel BZIMAGE] [--initrd FILE] [--force] [--detach] [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({
      args: [...args], strict: true,
      options: { name: { type: "string" }, from: { type: "string" }, kernel: { type: "string" }, initrd: { type: "string" }, force: { type: "boolean" }, json: { type: "boolean" },
        detach: { type: "boolean", description: "on Ctrl-C leave the build running in the daemon (and say how to follow it) instead of cancelling it" } },
    });
    // "busybox" and "scheme:thing" are source names for the daemon to judge; anything else is a path here.
    const from = values.from === undefined || values.from === "busybox" || /^[a-z]+:/.test(values.from) ? values.from : resolve(values.from);
    const ref = await ctx.call("image.build", { name: values.name, from, kernel: absolute(values.kernel), initrd: absolute(values.initrd), force: values.force }, 30_000);
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
