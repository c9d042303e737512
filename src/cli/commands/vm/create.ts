import type { Command } from "../../command.js";
import { noPositionals, parseFlags } from "../../flags.js";
import { CREATE_OPTIONS, createParams, createVm, reportNewVm } from "./common.js";

export const vmCreateCommand: Command = {
  path: ["vm", "create"],
  summary: "create a VM and wait until it is ssh-ready (progress per step; Ctrl-C cancels and unwinds it, unless --detach)",
  usage: "banger vm create [--name NAME] [--image IMAGE] [--vcpus N] [--memory MIB] [--disk GIB] [--root-size GIB] [-p [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]]... [--egress all|none|allow=LIST] [--isolate] [--cold] [--no-wait] [--detach] [--json]",
  description: "Each VM gets a copy-on-write root disk, a persistent /root work disk, its own IP behind NAT and the DNS name NAME.vm. Sizes not given come from the config file's [defaults].",
  flags: CREATE_OPTIONS,
  examples: ["banger vm create --name web --memory 2048 -p 8080:80", "banger vm create --image alpine --no-wait", "banger vm create --json | jq -r .ip"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(CREATE_OPTIONS, args);
    noPositionals(positionals, "banger vm create");
    const json = values.json === true;
    const detach = values.detach === true;
    const ref = await createVm(ctx, createParams(values), { quiet: json, detach });
    return reportNewVm(ctx, ref, { json, noWait: values["no-wait"] === true, detach, doing: `creating ${ref.vm.name}`, label: "create" });
  },
};
