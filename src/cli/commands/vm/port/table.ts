import type { ResultOf } from "../../../../rpc/descriptor.js";
import type { DaemonMethods } from "../../../../rpc/daemon/methods.js";
import { printJson, type CliContext } from "../../../command.js";

type PortsResult = ResultOf<DaemonMethods["vm.port_list"]>;

/** What vm port add|rm|ls print: the VM's ports after the change, as a table or JSON. */
export function printPorts(ctx: CliContext, r: PortsResult, json: boolean): void {
  if (json) {
    printJson(ctx.stdout, r);
    return;
  }
  if (r.ports.length === 0) {
    ctx.stdout.write(`${r.name} has no published ports\n`);
    return;
  }
  const rows = r.ports.map((p) => [`${p.host_ip}:${p.host_port}`, String(p.guest_port), p.proto]);
  const header = ["HOST", "GUEST_PORT", "PROTO"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  for (const row of [header, ...rows]) ctx.stdout.write(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ") + "\n");
  if (!r.running) ctx.stderr.write(`${r.name} is not running: its ports are published when it starts\n`);
}
