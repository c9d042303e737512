import type { Command } from "../../command.js";
import { noPositionals, parseFlags } from "../../flags.js";
import { CREATE_OPTIONS, createParams, createVm, reportNewVm } from "./common.js";

export const vmCreateCommand: Command = {
  path: ["vm", "create"],
  summary: "create a VM and wait until it is ssh-ready (progress per step; --no-wait prints the operation id)",
  usage: "banger vm create [--name NAME] [--image IMAGE] [--vcpus N] [--memory MIB] [--disk GIB] [-p [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]]... [--cold] [--no-wait] [--json]",
  description: "Each VM gets a copy-on-write root disk, a persistent /root work disk, its own IP behind NAT and the DNS name NAME.vm. Sizes not given come from the config file's [defaults].",
  flags: CREATE_OPTIONS,
  examples: ["banger vm create --name web --memory 2048 -p 8080:80", "banger vm create --image alpine --no-wait", "banger vm create --json | jq -r .ip"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(CREATE_OPTIONS, args);
    noPositionals(positionals, "banger vm create");
    const json = values.json === true;
    const ref = await createVm(ctx, createParams(values), { quiet: json });
    return reportNewVm(ctx, ref, { json, noWait: values["no-wait"] === true, doing: `creating ${ref.vm.name}`, label: "create" });
  },
};
