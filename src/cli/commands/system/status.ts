import type { SystemInfo } from "../../../rpc/daemon/system.js";
import { isRpcError } from "../../../rpc/errors.js";
import { VERSION } from "../../../version.js";
import { printJson, type CliContext, type Command } from "../../command.js";
import { daemonDownHint } from "../../daemon-down.js";
import { noPositionals, parseFlags, type FlagTable } from "../../flags.js";

const STATUS_FLAGS = { json: { type: "boolean", description: "print the status as JSON" } } as const satisfies FlagTable;
import type { InstallStatus } from "./admin-run.js";

export const systemStatusCommand: Command = {
  path: ["system", "status"],
  summary: "show whether the daemon and root helper are up, and how banger is set up",
  usage: "banger system status [--json]",
  description: "Exits 1 when the daemon or helper does not answer, or their versions differ from this CLI's.",
  flags: STATUS_FLAGS,
  examples: ["banger system status"],
  async run(args, ctx) {
    const { values, positionals } = parseFlags(STATUS_FLAGS, args);
    noPositionals(positionals, "banger system status");
    let info: SystemInfo | undefined;
    let daemonError: string | undefined;
    let vms: { total: number; running: number } | undefined;
    try {
      info = await ctx.call("system.info", {}, 10_000);
      const list = (await ctx.call("vm.list", {}, 10_000)).vms;
      vms = { total: list.length, running: list.filter((vm) => vm.state === "running").length };
    } catch (e) {
      if (!isRpcError(e) || (e.code !== "unavailable" && e.code !== "timeout")) throw e;
      daemonError = e.message;
    }
    // Through a context the daemon is the remote host's; this host's install says nothing about it.
    const inst = ctx.remote === undefined ? await installedStatus(ctx) : undefined;
    const mismatch = inst?.versions.mismatch === true || (info !== undefined && (info.daemon.version !== VERSION || (info.helper.version !== undefined && info.helper.version !== VERSION)));
    const healthy = info !== undefined && info.helper.reachable && !mismatch;
    if (values.json === true) {
      const extra = { ...(inst !== undefined ? { install: inst } : {}), ...(vms !== undefined ? { vms } : {}), version_mismatch: mismatch };
      printJson(ctx.stdout, info !== undefined
        ? { cli_version: VERSION, daemon_reachable: true, ...info, ...extra }
        : { cli_version: VERSION, daemon_reachable: false, error: daemonError, hint: daemonDownHint(inst !== undefined), daemon: { socket: ctx.layout.daemonSocket }, paths: { state_dir: ctx.layout.stateDir, runtime_dir: ctx.layout.runtimeDir, config: ctx.layout.configFile }, ...extra });
      return healthy ? 0 : 1;
    }
    const lines: [string, string][] = inst !== undefined ? installLines(inst) : [];
    if (info === undefined) {
      lines.push(["daemon", `not reachable (${daemonError ?? "?"})`], ["", daemonDownHint(inst !== undefined)]);
      writeLines(ctx, lines);
      return 1;
    }
    lines.push(
      ["daemon", `up (version ${info.daemon.version}, pid ${info.daemon.pid}, socket ${info.daemon.socket})`],
      ["helper", info.helper.reachable ? `up (version ${info.helper.version ?? "?"}, socket ${info.helper.socket})` : `not reachable: ${info.helper.error ?? "?"}; ${daemonDownHint(inst !== undefined)}`],
    );
    if (mismatch) lines.push(["versions", `MISMATCH: cli ${VERSION}, daemon ${info.daemon.version}, helper ${info.helper.version ?? "?"}${inst !== undefined ? `, installed ${inst.version}` : ""}; ${inst !== undefined ? "sudo banger system restart" : "restart both from one build"}`]);
    lines.push(
      ["owner uid", String(info.owner_uid)],
      ["state dir", info.paths.state_dir],
      ["runtime dir", info.paths.runtime_dir],
      ["config", info.paths.config],
    );
    if (vms !== undefined) lines.push(["vms", `${vms.total} (${vms.running} running)`]);
    if (info.vmm !== undefined) lines.push(["vmm", `${info.vmm.kind} (accel ${info.vmm.accel}): ${info.vmm.reason}`]);
    if (info.storage !== undefined) lines.push(["clone", `${info.storage.clone_strategy}: ${info.storage.reason}`]);
    if (info.network !== undefined) lines.push(["bridge", `${info.network.bridge} ${info.network.cidr} (host ${info.network.bridge_ip})`]);
    if (info.dns !== undefined) lines.push(["dns", info.dns.address]);
    if (info.startup !== undefined) lines.push(...startupLines(info.startup));
    writeLines(ctx, lines);
    return healthy ? 0 : 1;
  },
};

function writeLines(ctx: CliContext, lines: readonly [string, string][]): void {
  const width = Math.max(13, ...lines.map(([k]) => k.length + 2));
  for (const [k, v] of lines) ctx.stdout.write(`${(k === "" ? "" : k + ":").padEnd(width)}${v}\n`);
}

/** Only an installed host loads the install code (zod, the service managers): see admin-run.ts. */
async function installedStatus(ctx: CliContext): Promise<InstallStatus | undefined> {
  if (ctx.layout.installRoot === undefined) return undefined;
  const { installStatus } = await import("./admin-run.js");
  return installStatus(ctx);
}

function installLines(s: InstallStatus): [string, string][] {
  const svc = (name: string): string => {
    const st = s.services[name];
    return st === undefined ? "?" : st.running ? `running (pid ${st.pid ?? "?"})` : `NOT running: ${st.detail}`;
  };
  return [
    ["installed", `${s.version} (${s.mode}) for ${s.owner.name} (uid ${s.owner.uid}); code in ${s.paths.lib_dir}/current`],
    ["bangerd-root", svc("bangerd-root")],
    ["bangerd", svc("bangerd")],
  ];
}

/** What the daemon's start-up settled, and every orphan it found (each with what was done about it). */
function startupLines(s: NonNullable<SystemInfo["startup"]>): [string, string][] {
  if (!s.done) return [["start-up", "still settling the VMs a previous daemon left"]];
  const counts = ([["re-adopted", s.adopted], ["stopped", s.stopped], ["unwound", s.interrupted], ["failed", s.failed]] as const).map(([what, names]) => `${names.length} ${what}${names.length > 0 ? ` (${names.join(", ")})` : ""}`);
  const lines: [string, string][] = [["start-up", s.error !== undefined ? `failed: ${s.error}` : `VMs: ${counts.join(", ")}; ${s.orphans.length} orphan(s)`]];
  for (const o of s.orphans) lines.push(["orphan", `${o.kind} ${o.what}: ${o.action}${o.detail !== undefined ? ` (${o.detail})` : ""}`]);
  for (const u of s.unchecked) lines.push(["unchecked", u]);
  return lines;
}
