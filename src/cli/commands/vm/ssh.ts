import { UsageError, type Command } from "../../command.js";
import { parseFlags } from "../../flags.js";
import { interactiveSsh, sshArgvFor, type SshExec } from "./common.js";
import { vmSshThroughContext } from "./through-context.js";
import { imageDefaultsFor, remoteUnderDefaults } from "./image-defaults.js";

/** Splits `NAME [-- CMD...]`: everything after -- is the guest command's, its flags included. */
export function splitNameAndCommand(args: readonly string[]): { name: string | undefined; command: string[] } {
  const { positionals: before, rest } = parseFlags({}, args);
  if (before.length > 1) throw new UsageError(`unexpected ${JSON.stringify(before[1])}; put the command after --, as in: banger vm ssh ${before[0] ?? "NAME"} -- ${before.slice(1).join(" ")}`);
  return { name: before[0], command: rest ?? [] };
}

export function makeVmSshCommand(exec: SshExec = interactiveSsh): Command {
  return {
    path: ["vm", "ssh"],
    summary: "open a shell in a VM (or run CMD through the guest's shell), host key pinned, no prompts",
    usage: "banger vm ssh NAME [-- CMD...]",
    description: "CMD is handed to the guest's shell as typed, as ssh does (pipes and globs work there); for argv kept exactly, use vm exec.",
    flags: {},
    examples: ["banger vm ssh web", "banger vm ssh web -- 'journalctl -b | tail'"],
    completes: "vm",
    async run(args, ctx) {
      const { name, command } = splitNameAndCommand(args);
      if (name === undefined) throw new UsageError("give a VM name");
      // Through a context the guest key is on that host: its banger opens the session (see through-context.ts).
      if (ctx.remote !== undefined) return exec(vmSshThroughContext(ctx.remote, name, command));
      const vm = await ctx.call("vm.get", { name });
      // ssh semantics: CMD is handed to the guest shell as typed (pipes, globs work), as the image's user if it names one.
      const remote = await remoteUnderDefaults(await imageDefaultsFor(ctx, vm), command.length > 0 ? { line: command.join(" ") } : undefined);
      if (remote !== undefined) return exec(await sshArgvFor(vm, { command: [remote], tty: command.length === 0 }));
      return exec(await sshArgvFor(vm, command.length > 0 ? { command: [command.join(" ")] } : {}));
    },
  };
}

export const vmSshCommand = makeVmSshCommand();
