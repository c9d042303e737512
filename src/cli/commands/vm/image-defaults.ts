import type { ExecDefaults } from "../../../model/exec-defaults.js";
import type { VmView } from "../../../rpc/daemon/vm.js";
import type { CliContext } from "../../command.js";

/** The user, env and workdir the VM's image says commands run with (an OCI image's config; none otherwise). */
export async function imageDefaultsFor(ctx: CliContext, vm: VmView): Promise<ExecDefaults> {
  return (await ctx.call("image.get", { name: vm.image })).exec_defaults;
}

/**
 * The remote command for `vm ssh`/`vm run` under an image's defaults, as docker
 * run does: ARGV run directly, a typed command line through sh -c, no command a
 * login shell (ssh then needs a TTY). Undefined when the image sets nothing, so
 * plain ssh semantics stay as they were.
 */
export async function remoteUnderDefaults(d: ExecDefaults, command: { argv: readonly string[] } | { line: string } | undefined): Promise<string | undefined> {
  const { effectiveExecOptions, hasExecDefaults } = await import("../../../system/exec-defaults.js");
  if (!hasExecDefaults(d)) return undefined;
  const { remoteExecCommand } = await import("../../../system/ssh-exec.js");
  const argv = command === undefined ? ["sh", "-l"] : "argv" in command ? command.argv : ["sh", "-c", command.line];
  return remoteExecCommand(argv, effectiveExecOptions(d, {}));
}
