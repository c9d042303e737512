import { parseArgs } from "node:util";
import type { Command } from "../../command.js";
import { CREATE_OPTIONS, createParams, createVm, reportNewVm } from "./common.js";

export const vmCreateCommand: Command = {
  path: ["vm", "create"],
  summary: "create a VM and wait until it is ssh-ready (progress per step; --no-wait prints the operation id)",
  usage: "banger vm create [--name N] [--image I] [--vcpus N] [--memory MIB] [--disk GIB] [--cold] [--no-wait] [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({ args: [...args], options: CREATE_OPTIONS, strict: true });
    const json = values.json === true;
    const ref = await createVm(ctx, createParams(values), { quiet: json });
    return reportNewVm(ctx, ref, { json, noWait: values["no-wait"] === true, doing: `creating ${ref.vm.name}`, label: "create" });
  },
};
