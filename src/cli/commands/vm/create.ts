import { parseArgs } from "node:util";
import { printJson, type Command } from "../../command.js";
import { formatMs } from "../../progress.js";
import { CREATE_OPTIONS, createParams, createVm, waitForVm } from "./common.js";

export const vmCreateCommand: Command = {
  path: ["vm", "create"],
  summary: "create a VM and wait until it is ssh-ready (progress per step; --no-wait prints the operation id); -p publishes a guest port on the host, on 127.0.0.1 unless HOST_IP is given",
  usage: "banger vm create [--name N] [--image I] [--vcpus N] [--memory MIB] [--disk GIB] [-p [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]]... [--no-wait] [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({ args: [...args], options: CREATE_OPTIONS, strict: true });
    const json = values.json === true;
    const ref = await createVm(ctx, createParams(values), { quiet: json });
    if (values["no-wait"] === true) {
      if (json) printJson(ctx.stdout, ref);
      else ctx.stdout.write(`${ref.operation_id}\n`);
      return 0;
    }
    if (!json) ctx.stderr.write(`creating ${ref.vm.name} (${ref.operation_id})\n`);
    const t0 = Date.now();
    const vm = await waitForVm(ctx, ref.operation_id, ref.vm.name, "create", { quiet: json });
    if (vm === undefined) return 1;
    if (json) printJson(ctx.stdout, vm);
    else {
      ctx.stderr.write(`ready in ${formatMs(Date.now() - t0)}\n`);
      ctx.stdout.write(`${vm.name} is running at ${vm.ip ?? "?"} (${vm.dns_name}); connect with: banger vm ssh ${vm.name}\n`);
    }
    return 0;
  },
};
