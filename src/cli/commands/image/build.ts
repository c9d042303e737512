import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { printJson, type Command } from "../../command.js";
import { followOperation, formatMs } from "../../progress.js";

/** Paths are resolved here, against the user's cwd: the daemon has its own. */
function absolute(p: string | undefined): string | undefined {
  return p === undefined ? undefined : resolve(p);
}

/**
 * "busybox" and "scheme:thing" are source names for the daemon to judge; oci-archive:PATH and a bare
 * path are resolved here, against the user's cwd.
 */
export function fromValue(from: string | undefined): string | undefined {
  if (from?.startsWith("oci-archive:") === true) return `oci-archive:${resolve(from.slice("oci-archive:".length))}`;
  return from === undefined || from === "busybox" || /^[a-z]+:/.test(from) ? from : resolve(from);
}

export const imageBuildCommand: Command = {
  path: ["image", "build"],
  summary: "build an image (default: Debian bookworm as 'default'; --from busybox: the tiny test image)",
  usage: "banger image build [--name N] [--from debian:bookworm|busybox|oci-archive:PATH|DIR|TAR] [--kernel BZIMAGE] [--initrd FILE] [--force] [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({
      args: [...args], strict: true,
      options: { name: { type: "string" }, from: { type: "string" }, kernel: { type: "string" }, initrd: { type: "string" }, force: { type: "boolean" }, json: { type: "boolean" } },
    });
    const from = fromValue(values.from);
    const ref = await ctx.call("image.build", { name: values.name, from, kernel: absolute(values.kernel), initrd: absolute(values.initrd), force: values.force }, 30_000);
    const json = values.json === true;
    if (!json) ctx.stderr.write(`building image ${ref.image} (${ref.operation_id})\n`);
    const op = await followOperation(ctx, ref.operation_id, `image ${ref.image}`, { quiet: json });
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
