import { parseArgs } from "node:util";
import { UsageError, type Command } from "../../command.js";
import { CREATE_OPTIONS, createParams, createVm, interactiveSsh, quoteRemote, sshArgvFor, waitForVm, type SshExec } from "./common.js";
import { imageDefaultsFor, remoteUnderDefaults } from "./image-defaults.js";

export function makeVmRunCommand(exec: SshExec = interactiveSsh): Command {
  return {
    path: ["vm", "run"],
    summary: "create a VM, wait until ssh-ready, then open a shell or run CMD in it (--rm deletes it afterwards); -p publishes a guest port on the host, on 127.0.0.1 unless HOST_IP is given",
    usage: "banger vm run [--name N] [--image I] [--vcpus N] [--memory MIB] [--disk GIB] [-p [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]]... [--cold] [--rm] [-- CMD...]",
    async run(args, ctx) {
      const { values, positionals } = parseArgs({ args: [...args], options: { ...CREATE_OPTIONS, rm: { type: "boolean" } }, strict: true, allowPositionals: true });
      if (values["no-wait"] === true || values.json === true) throw new UsageError("vm run always waits and attaches; use vm create for --no-wait or --json");
      const dashdash = args.indexOf("--");
      if (positionals.length > 0 && (dashdash === -1 || args.indexOf(positionals[0] ?? "") < dashdash)) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; put the command after --`);
      const ref = await createVm(ctx, createParams(values), { quiet: false });
      ctx.stderr.write(`creating ${ref.vm.name} (${ref.operation_id})\n`);
      let code = 1;
      try {
        const vm = await waitForVm(ctx, ref.operation_id, ref.vm.name, "create", { quiet: false });
        if (vm === undefined) return 1;
        const remote = await remoteUnderDefaults(await imageDefaultsFor(ctx, vm), positionals.length > 0 ? { argv: positionals } : undefined);
        const argv = remote !== undefined ? await sshArgvFor(vm, { command: [remote], tty: positionals.length === 0 })
          : positionals.length > 0 ? await sshArgvFor(vm, { command: [await quoteRemote(positionals)] }) : await sshArgvFor(vm);
        code = await exec(argv);
        return code;
      } finally {
        if (values.rm === true) {
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
