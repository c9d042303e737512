import { lookup } from "node:dns/promises";
import { ConfigError, loadConfig } from "../../config/load.js";
import { storageDoctorCheck } from "../../daemon/storage/doctor.js";
import { runChecks, type CheckResult } from "../../doctor/checks.js";
import { resolveBinary } from "../../vmm/binaries.js";
import { printJson, type CliContext } from "../command.js";
import { noPositionals, parseFlags } from "../flags.js";
import { DOCTOR_FLAGS } from "./doctor.js";

/**
 * `banger doctor`'s body. doctor.ts loads it on use: it pulls zod, the config
 * loader, node:child_process and fs/promises, which no other command needs at
 * start, and scripts/bundle.mjs ships it as its own file (dist/bin/banger-doctor.cjs)
 * so `banger vm list` does not even parse it.
 */
export async function runDoctor(args: readonly string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseFlags(DOCTOR_FLAGS, args);
  noPositionals(positionals, "banger doctor");
  let config;
  try {
    config = loadConfig(ctx.layout.configFile);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    ctx.stderr.write(`error: ${e.message}\n`);
    return 1;
  }
  const checks = [...runChecks(config), await storageDoctorCheck(ctx.layout.stateDir, config.storage.clone_strategy), await vmmCheck(ctx, config.vmm.firecracker_bin), await hostDnsCheck(ctx)];
  const failed = checks.filter((c) => c.status === "missing");
  if (values.json === true) {
    printJson(ctx.stdout, { ok: failed.length === 0, config: ctx.layout.configFile, checks });
  } else {
    for (const c of checks) {
      const mark = c.status === "ok" ? "ok  " : c.status === "warn" ? "warn" : "FAIL";
      ctx.stdout.write(`[${mark}] ${c.name.padEnd(13)} ${c.detail}\n`);
      if (c.fix !== undefined && c.status !== "ok") ctx.stdout.write(`       ${"".padEnd(13)} fix: ${c.fix}\n`);
    }
    ctx.stdout.write(failed.length === 0 ? "\nall required pieces are present\n" : `\n${failed.length} required piece(s) missing\n`);
  }
  return failed.length === 0 ? 0 : 1;
}

/**
 * Which VMM banger uses and why. The daemon knows for sure (it ran the probe boot through the root
 * helper, since /dev/kvm is root-only); without a daemon doctor says what auto will try.
 */
async function vmmCheck(ctx: CliContext, firecrackerBin: string): Promise<CheckResult> {
  try {
    const info = await ctx.call("system.info", {}, 5_000);
    if (info.vmm !== undefined) {
      const warn = info.vmm.accel === "tcg" || /warning/.test(info.vmm.reason);
      return { name: "vmm", status: warn ? "warn" : "ok", detail: `${info.vmm.kind} (accel ${info.vmm.accel}): ${info.vmm.reason}`, required: false, ...(warn ? { fix: "guests are emulated (slow); a host whose /dev/kvm runs stock guests gets qemu+kvm or firecracker automatically" } : {}) };
    }
  } catch {
    // No daemon: fall through to what can be said without the probe.
  }
  const fc = resolveBinary(firecrackerBin);
  return {
    name: "vmm",
    status: "ok",
    detail: fc !== undefined ? `firecracker (${fc}) when /dev/kvm works, else qemu` : `qemu (${firecrackerBin} not found); kvm or tcg is decided by a probe boot through the root helper (start bangerd to see the choice)`,
    required: false,
  };
}

/**
 * How the host resolves NAME.vm (the root helper's choice, through the daemon) and whether it works:
 * a running VM's name is looked up the way every program on the host does (getaddrinfo, as `getent
 * hosts` does) and must give that VM's address.
 */
async function hostDnsCheck(ctx: CliContext): Promise<CheckResult> {
  let dns;
  try {
    dns = (await ctx.call("system.info", {}, 5_000)).host_dns;
  } catch {
    // No daemon: nothing to say about a choice only the helper knows.
  }
  if (dns === undefined) return { name: "host-dns", status: "warn", detail: "the daemon is not reachable: cannot tell how the host resolves NAME.vm", fix: "start the daemon, then run doctor again", required: false };
  const mode = `mode ${dns.mode}${dns.reason === undefined ? "" : ` (${dns.reason})`}`;
  if (dns.mode === "none" || dns.mode === "unknown") return { name: "host-dns", status: "warn", detail: `${mode}: NAME.vm does not resolve on the host`, fix: 'set network.host_dns = "auto" in the root helper\'s config and restart it', required: false };
  if (dns.probe === undefined) return { name: "host-dns", status: "ok", detail: `${mode}; no running VM to look up`, required: false };
  const name = `${dns.probe.name}.vm`;
  let got: string;
  try {
    got = (await lookup(name, { family: 4 })).address;
  } catch (e) {
    got = (e as NodeJS.ErrnoException).code ?? String(e);
  }
  if (got === dns.probe.ip) return { name: "host-dns", status: "ok", detail: `${mode}; ${name} resolves to ${got}`, required: false };
  return {
    name: "host-dns",
    status: "warn",
    detail: `${mode}; ${name} gives ${got}, not ${dns.probe.ip}`,
    fix: dns.mode === "hosts" ? "see the daemon's log for why the hosts file was not synced (a VM start or stop syncs it again)" : "check `resolvectl status` for banger's bridge (domain ~vm, DNS = network.dns_listen)",
    required: false,
  };
}
