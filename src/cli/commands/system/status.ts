import { parseArgs } from "node:util";
import type { SystemInfo } from "../../../rpc/daemon/system.js";
import { isRpcError } from "../../../rpc/errors.js";
import { VERSION } from "../../../version.js";
import { printJson, type Command } from "../../command.js";

export const systemStatusCommand: Command = {
  path: ["system", "status"],
  summary: "show whether the daemon and root helper are up, and how banger is set up",
  usage: "banger system status [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({ args: [...args], options: { json: { type: "boolean" } }, strict: true });
    let info: SystemInfo | undefined;
    let daemonError: string | undefined;
    try {
      info = await ctx.call("system.info", {}, 10_000);
    } catch (e) {
      if (!isRpcError(e) || (e.code !== "unavailable" && e.code !== "timeout")) throw e;
      daemonError = e.message;
    }
    if (values.json === true) {
      printJson(ctx.stdout, info !== undefined
        ? { cli_version: VERSION, daemon_reachable: true, ...info }
        : { cli_version: VERSION, daemon_reachable: false, error: daemonError, daemon: { socket: ctx.layout.daemonSocket }, paths: { state_dir: ctx.layout.stateDir, runtime_dir: ctx.layout.runtimeDir, config: ctx.layout.configFile } });
      return info !== undefined ? 0 : 1;
    }
    if (info === undefined) {
      ctx.stdout.write(`daemon:  not reachable (${daemonError ?? "?"})\n         start it with: bangerd\n`);
      return 1;
    }
    const lines: [string, string][] = [
      ["daemon", `up (version ${info.daemon.version}, pid ${info.daemon.pid}, socket ${info.daemon.socket})`],
      ["helper", info.helper.reachable ? `up (version ${info.helper.version ?? "?"}, socket ${info.helper.socket})` : `not reachable: ${info.helper.error ?? "?"}`],
      ["owner uid", String(info.owner_uid)],
      ["state dir", info.paths.state_dir],
      ["runtime dir", info.paths.runtime_dir],
      ["config", info.paths.config],
    ];
    if (info.vmm !== undefined) lines.push(["vmm", `${info.vmm.kind} (accel ${info.vmm.accel}): ${info.vmm.reason}`]);
    if (info.storage !== undefined) lines.push(["clone", `${info.storage.clone_strategy}: ${info.storage.reason}`]);
    if (info.network !== undefined) lines.push(["bridge", `${info.network.bridge} ${info.network.cidr} (host ${info.network.bridge_ip})`]);
    if (info.dns !== undefined) lines.push(["dns", info.dns.address]);
    if (info.startup !== undefined) lines.push(...startupLines(info.startup));
    for (const [k, v] of lines) ctx.stdout.write(`${(k + ":").padEnd(13)}${v}\n`);
    return info.helper.reachable ? 0 : 1;
  },
};

/** What the daemon's start-up settled, and every orphan it found (each with what was done about it). */
function startupLines(s: NonNullable<SystemInfo["startup"]>): [string, string][] {
  if (!s.done) return [["start-up", "still settling the VMs a previous daemon left"]];
  const counts = ([["re-adopted", s.adopted], ["stopped", s.stopped], ["unwound", s.interrupted], ["failed", s.failed]] as const).map(([what, names]) => `${names.length} ${what}${names.length > 0 ? ` (${names.join(", ")})` : ""}`);
  const lines: [string, string][] = [["start-up", s.error !== undefined ? `failed: ${s.error}` : `VMs: ${counts.join(", ")}; ${s.orphans.length} orphan(s)`]];
  for (const o of s.orphans) lines.push(["orphan", `${o.kind} ${o.what}: ${o.action}${o.detail !== undefined ? ` (${o.detail})` : ""}`]);
  for (const u of s.unchecked) lines.push(["unchecked", u]);
  return lines;
}
