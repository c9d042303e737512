import { parseArgs } from "node:util";
import type { Command } from "../../command.js";
import { CREATE_OPTIONS, createParams, createVm, reportNewVm } from "./common.js";

export const vmCreateCommand: Command = {
  path: ["vm", "create"],
  summary: "create a VM and wait until it is ssh-ready (progress per step; --no-wait prints the operation id; Ctrl-C cancels and unwinds it, unless --detach); -p publishes a guest port on the host, on 127.0.0.1 unless HOST_IP is given",
  usage: "banger vm create [--name N] [--image I] [--vcpus N] [--memory MIB] [--disk GIB] [--root-size GIB] [-p [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]]... [--cold] [--no-wait] [--detach] [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({ args: [...args], options: CREATE_OPTIONS, strict: true });
    const json = values.json === true;
    const detach = values.detach === true;
    const ref = await createVm(ctx, createParams(values), { quiet: json, detach });
    return reportNewVm(ctx, ref, { json, noWait: values["no-wait"] === true, detach, doing: `creating ${ref.vm.name}`, label: "create" });
  },
};
