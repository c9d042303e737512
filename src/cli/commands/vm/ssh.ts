import { UsageError, type Command } from "../../command.js";
import { interactiveSsh, sshArgvFor, type SshExec } from "./common.js";
import { imageDefaultsFor, remoteUnderDefaults } from "./image-defaults.js";

/** Splits `NAME [-- CMD...]` without letting parseArgs eat the command's own flags. */
export function splitNameAndCommand(args: readonly string[]): { name: string | undefined; command: string[] } {
  const dd = args.indexOf("--");
  const before = dd === -1 ? [...args] : args.slice(0, dd);
  const command = dd === -1 ? [] : args.slice(dd + 1);
  const unknown = before.find((a) => a.startsWith("-"));
  if (unknown !== undefined) throw new UsageError(`unknown flag ${unknown}`);
  if (before.length > 1) throw new UsageError(`unexpected ${JSON.stringify(before[1])}; put the command after --`);
  return { name: before[0], command };
}

export function makeVmSshCommand(exec: SshExec = interactiveSsh): Command {
  return {
    path: ["vm", "ssh"],
    summary: "open a shell in a VM (or run CMD through the guest's shell), host key pinned, no prompts",
    usage: "banger vm ssh NAME [-- CMD...]",
    async run(args, ctx) {
      const { name, command } = splitNameAndCommand(args);
      if (name === undefined) throw new UsageError("give a VM name");
      const vm = await ctx.call("vm.get", { name });
      // ssh semantics: CMD is handed to the guest shell as typed (pipes, globs work), as the image's user if it names one.
      const remote = await remoteUnderDefaults(await imageDefaultsFor(ctx, vm), command.length > 0 ? { line: command.join(" ") } : undefined);
      if (remote !== undefined) return exec(await sshArgvFor(vm, { command: [remote], tty: command.length === 0 }));
      return exec(await sshArgvFor(vm, command.length > 0 ? { command: [command.join(" ")] } : {}));
    },
  };
}

export const vmSshCommand = makeVmSshCommand();
