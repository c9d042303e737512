import type { ResultOf } from "../../../../rpc/descriptor.js";
import type { DaemonMethods } from "../../../../rpc/daemon/methods.js";
import { printJson, type CliContext } from "../../../command.js";

type EgressResult = ResultOf<DaemonMethods["vm.egress_show"]>;

/** What vm egress set|show print: the VM's egress after the change. */
export function printEgress(ctx: CliContext, r: EgressResult, json: boolean): void {
  if (json) {
    printJson(ctx.stdout, r);
    return;
  }
  ctx.stdout.write(`egress:   ${r.policy}\nisolate:  ${r.isolate ? "yes" : "no"}\n`);
  if (!r.running) ctx.stderr.write(`${r.name} is not running: its policy applies when it starts\n`);
}
