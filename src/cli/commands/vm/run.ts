import { printJson, UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";
import { InterruptedError } from "../../interrupt.js";
import { quoteForRemoteShell } from "../../../system/shell-quote.js";
import { CREATE_OPTIONS, createParams, createVm, interactiveSsh, sshArgvFor, waitForVm, type SshExec } from "./common.js";
import { vmSshThroughContext } from "./through-context.js";

// vm create's flags but --no-wait: run always waits, then attaches.
const { name, image, vcpus, memory, disk, cold, publish, egress, isolate, detach } = CREATE_OPTIONS;
const RUN_FLAGS = {
  name, image, vcpus, memory, disk, "root-size": CREATE_OPTIONS["root-size"], cold, publish, egress, isolate, "no-isolate": CREATE_OPTIONS["no-isolate"], detach,
  rm: { type: "boolean", description: "delete the VM when the shell or CMD exits" },
  json: { type: "boolean", description: "print the VM as JSON on stdout once it is ready (progress not shown), then attach as usual" },
} as const satisfies FlagTable;
import { imageDefaultsFor, remoteUnderDefaults } from "./image-defaults.js";

export function makeVmRunCommand(exec: SshExec = interactiveSsh): Command {
  return {
    path: ["vm", "run"],
    summary: "create a VM, wait until ssh-ready, then open a shell or run CMD in it (--rm deletes it afterwards)",
    usage: "banger vm run [--name NAME] [--image IMAGE] [--vcpus N] [--memory MIB] [--disk GIB] [--root-size GIB] [-p [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]]... [--egress all|none|allow=LIST] [--isolate] [--cold] [--rm] [--detach] [--json] [-- CMD...]",
    description: "CMD (after --) runs through the guest's shell with the terminal attached; banger exits with its exit code. Without CMD an interactive shell opens. Sizes not given come from the config file's [defaults].",
    flags: RUN_FLAGS,
    examples: ["banger vm run", "banger vm run --rm -- uname -a", "banger vm run --name web -p 8080:80 --memory 2048"],
    async run(args, ctx) {
      const { values, positionals, rest } = parseFlags(RUN_FLAGS, args);
      if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; put the command after --, as in: banger vm run -- ${positionals.join(" ")}`);
      const json = values.json === true;
      const detach = values.detach === true;
      const ref = await createVm(ctx, createParams(values), { quiet: json, detach });
      if (!json) ctx.stderr.write(`creating ${ref.vm.name} (${ref.operation_id})\n`);
      // Ctrl-C during the create has already cancelled (nothing to remove) or detached (the user keeps it).
      let interrupted = false;
      let ran = false;
      try {
        const vm = await waitForVm(ctx, ref.operation_id, ref.vm.name, "create", { quiet: json, detach }).catch((e: unknown) => {
          interrupted = e instanceof InterruptedError;
          throw e;
        });
        if (vm === undefined) return 1;
        if (json) printJson(ctx.stdout, vm);
        const words = rest ?? [];
        const command = words.length > 0 ? [quoteForRemoteShell(words)] : [];
        // Through a context the guest is reachable from its host only: that host's banger attaches (and applies the image's defaults).
        const remote = ctx.remote !== undefined ? undefined : await remoteUnderDefaults(await imageDefaultsFor(ctx, vm), words.length > 0 ? { argv: words } : undefined);
        const argv = ctx.remote !== undefined ? vmSshThroughContext(ctx.remote, vm.name, command)
          : remote !== undefined ? await sshArgvFor(vm, { command: [remote], tty: words.length === 0 })
          : await sshArgvFor(vm, command.length > 0 ? { command } : {});
        ran = true;
        return await exec(argv);
      } finally {
        if (ran && values.rm !== true) ctx.stderr.write(`${ref.vm.name} is still running; remove it with: banger vm rm --force ${ref.vm.name} (or use vm run --rm)\n`);
        if (values.rm === true && !interrupted) {
          try {
            await ctx.call("vm.delete", { name: ref.vm.name, force: true }, 180_000);
          } catch (e) {
            ctx.stderr.write(`error: could not delete ${ref.vm.name}: ${e instanceof Error ? e.message : String(e)}; remove it with: banger vm rm --force ${ref.vm.name}\n`);
          }
        }
      }
    },
  };
}

export const vmRunCommand = makeVmRunCommand();
