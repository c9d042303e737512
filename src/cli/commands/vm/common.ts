import { EGRESS_USAGE, formatEgress, parseEgress } from "../../../model/egress.js";
import { parsePortSpec } from "../../../model/port-spec.js";
import { isRpcError } from "../../../rpc/errors.js";
import type { VmView } from "../../../rpc/daemon/vm.js";
import type { ParamsOf } from "../../../rpc/descriptor.js";
import type { DaemonMethods } from "../../../rpc/daemon/methods.js";
import type { SshArgvOptions } from "../../../system/ssh.js";
import { printJson, UsageError, type CliContext } from "../../command.js";
import { JSON_FLAG, parseFlags, positiveNumber, type FlagTable } from "../../flags.js";
import { endInterrupted, followInterruptible } from "../../interrupt.js";
import { formatMs } from "../../progress.js";

type VmCreateParams = ParamsOf<DaemonMethods["vm.create"]>;


/** Flags shared by `vm create` and `vm run`; sizes default to the config's [defaults]. */
export const CREATE_OPTIONS = {
  name: { type: "string", value: "NAME", description: "the VM's name, also its DNS name NAME.vm", default: "a generated name" },
  image: { type: "string", value: "IMAGE", description: "the image to boot; the default one is built on first use", defaultFrom: "defaults.image", complete: "image" },
  vcpus: { type: "string", value: "N", description: "virtual CPUs (1-32, at most this host's)", defaultFrom: "defaults.vcpus" },
  memory: { type: "string", value: "MIB", description: "memory in MiB (128-65536)", defaultFrom: "defaults.memory_mib" },
  disk: { type: "string", value: "GIB", description: "size of the persistent /root work disk in GiB (1-1024)", defaultFrom: "defaults.disk_gib" },
  "root-size": { type: "string", value: "GIB", description: "grow the root disk to GIB; such a VM boots cold", default: "the image's size" },
  cold: { type: "boolean", description: "boot from scratch even when the image has a warm template (see image warm)" },
  publish: { type: "string", short: "p", multiple: true, value: "[HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]", description: "publish a guest port on the host; HOST_IP defaults to 127.0.0.1 (this host only)" },
  egress: { type: "string", value: "all|none|allow=LIST", description: "what the guest may reach: all, none (only banger's DNS) or allow=LIST of IPv4 addresses, CIDRs and domain names (a domain also allows its subdomains)", defaultFrom: "network.egress" },
  isolate: { type: "boolean", description: "cut the VM off from the other VMs on the bridge (default: network.isolate)" },
  "no-isolate": { type: "boolean", description: "let the VM reach the other VMs even when network.isolate is on" },
  "no-wait": { type: "boolean", description: "print the operation id and return at once instead of following the boot" },
  detach: { type: "boolean", description: "on Ctrl-C leave the create running in the daemon (and say how to follow it) instead of cancelling and unwinding it" },
  json: JSON_FLAG,
} as const satisfies FlagTable;

/** A `--flag N` value as a positive whole number (undefined when the flag was not given). */
export function wholeNumberFlag(flag: string, v: string | undefined, unit?: string): number | undefined {
  return positiveNumber(flag, v, unit);
}

/** `-p` values as the daemon takes them; a bad one is a usage error saying what a good one looks like. */
export function portsFromSpecs(specs: readonly string[]): { host_ip: string; host_port: number; guest_port: number; proto: "tcp" | "udp" }[] {
  return specs.map((text) => {
    const spec = parsePortSpec(text);
    if (typeof spec === "string") throw new UsageError(spec);
    return { host_ip: spec.hostIp, host_port: spec.hostPort, guest_port: spec.guestPort, proto: spec.proto };
  });
}

export function createParams(values: { name?: string | undefined; image?: string | undefined; vcpus?: string | undefined; memory?: string | undefined; disk?: string | undefined; "root-size"?: string | undefined; publish?: string[] | undefined; cold?: boolean | undefined; egress?: string | undefined; isolate?: boolean | undefined; "no-isolate"?: boolean | undefined }): VmCreateParams {
  const p: VmCreateParams = {};
  if (values.egress !== undefined) p.egress = egressFlag(values.egress);
  const isolate = isolateFlags(values.isolate, values["no-isolate"]);
  if (isolate !== undefined) p.isolate = isolate;
  if (values.cold === true) p.cold = true;
  if (values.publish !== undefined && values.publish.length > 0) p.ports = portsFromSpecs(values.publish);
  if (values.name !== undefined) p.name = values.name;
  if (values.image !== undefined) p.image = values.image;
  const vcpus = wholeNumberFlag("vcpus", values.vcpus);
  const memory = wholeNumberFlag("memory", values.memory, "MiB");
  const disk = wholeNumberFlag("disk", values.disk, "GiB");
  if (vcpus !== undefined) p.vcpus = vcpus;
  if (memory !== undefined) p.memory_mib = memory;
  if (disk !== undefined) p.disk_gib = disk;
  const rootGib = wholeNumberFlag("root-size", values["root-size"]);
  if (rootGib !== undefined) p.root_gib = rootGib;
  return p;
}

/** `--egress` checked here, so a bad LIST is a usage error before anything is asked of the daemon. */
export function egressFlag(text: string): string {
  const p = parseEgress(text);
  if ("error" in p) throw new UsageError(`--egress: ${p.error}${p.error.includes(EGRESS_USAGE) ? "" : `; ${EGRESS_USAGE}`}`);
  return formatEgress(p);
}

/** `--isolate` / `--no-isolate` as one optional boolean. */
export function isolateFlags(on: boolean | undefined, off: boolean | undefined): boolean | undefined {
  if (on === true && off === true) throw new UsageError("give --isolate or --no-isolate, not both");
  return on === true ? true : off === true ? false : undefined;
}

/** One op id per operation when a command acts on several VMs; the first keeps the invocation's id. */
export function opIdFor(ctx: CliContext, index: number): string {
  return index === 0 ? ctx.opId : `${ctx.opId}${index.toString(36)}`;
}

export function formatUptime(s: number | null): string {
  if (s === null) return "-";
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

export function renderTable(vms: readonly VmView[]): string {
  const header = ["NAME", "STATE", "IP", "VCPUS", "MEMORY", "IMAGE", "VMM", "UPTIME"];
  const rows = vms.map((v) => [v.name, v.state, v.ip ?? "-", String(v.vcpus), `${v.memory_mib} MiB`, v.image, v.vmm, formatUptime(v.uptime_s)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ")).join("\n") + "\n";
}

/**
 * SSH argv for a running VM from its view (the daemon tells us the key and known_hosts paths).
 * system/ssh.js is loaded here, not at the top: it pulls node:child_process, which costs every
 * CLI invocation (`vm list` included) ~10 ms of start-up.
 */
export async function sshArgvFor(vm: VmView, opts: SshArgvOptions = {}): Promise<string[]> {
  if (vm.state === "paused") throw new Error(`VM ${vm.name} is paused; resume it with: banger vm resume ${vm.name}`);
  if (vm.state !== "running" || vm.ip === null) throw new Error(`VM ${vm.name} is ${vm.state}; start it with: banger vm start ${vm.name}`);
  const { sshArgv } = await import("../../../system/ssh.js");
  return sshArgv({ keyPath: vm.ssh.key_path, knownHostsPath: vm.ssh.known_hosts_path, host: vm.ip, user: vm.ssh.user }, opts);
}

/**
 * Waits for an operation and returns the VM view on success; prints the
 * failing step's error and returns undefined on failure.
 */
export async function waitForVm(ctx: CliContext, operationId: string, vmName: string, label: string, opts: { quiet: boolean; opId?: string; detach?: boolean | undefined }): Promise<VmView | undefined> {
  // Ctrl-C cancels the operation (the daemon unwinds it) unless --detach: then it goes on without us.
  const outcome = await followInterruptible(ctx, operationId, label, { quiet: opts.quiet, detach: opts.detach === true, opIdForCalls: opts.opId });
  const op = outcome.op;
  if (outcome.interrupted !== undefined || op === undefined) endInterrupted(ctx, outcome, `${label} ${vmName}`, `remove it with: banger vm rm --force ${vmName}`);
  if (op.state === "succeeded") {
    // A create that could not use its image's warm template says why it booted cold.
    const note = typeof op.result === "object" && op.result !== null ? (op.result as { note?: unknown }).note : undefined;
    if (typeof note === "string" && !opts.quiet) ctx.stderr.write(`note: ${note}\n`);
    return ctx.call("vm.get", { name: vmName }, 10_000, opts.opId);
  }
  ctx.stderr.write(`error: ${label} ${vmName} failed: ${op.error ?? "unknown error"} (${op.id})\n`);
  return undefined;
}

/**
 * The end of `vm create` and `vm restore`: print the operation id (`--no-wait`), or follow the
 * operation and say where the new VM runs. The exit code.
 */
export async function reportNewVm(ctx: CliContext, ref: { operation_id: string; vm: { name: string } }, opts: { json: boolean; noWait: boolean; detach?: boolean | undefined; doing: string; label: string }): Promise<number> {
  if (opts.noWait) {
    if (opts.json) printJson(ctx.stdout, ref);
    else ctx.stdout.write(`${ref.operation_id}\n`);
    return 0;
  }
  if (!opts.json) ctx.stderr.write(`${opts.doing} (${ref.operation_id})\n`);
  const t0 = Date.now();
  const vm = await waitForVm(ctx, ref.operation_id, ref.vm.name, opts.label, { quiet: opts.json, detach: opts.detach });
  if (vm === undefined) return 1;
  if (opts.json) printJson(ctx.stdout, vm);
  else {
    ctx.stderr.write(`ready in ${formatMs(Date.now() - t0)}\n`);
    ctx.stdout.write(`${vm.name} is running at ${vm.ip ?? "?"} (${vm.dns_name}); connect with: banger vm ssh ${vm.name}\n`);
  }
  return 0;
}

/** Runs ssh with the terminal attached and returns its exit code; swapped out in tests. */
export type SshExec = (argv: readonly string[]) => Promise<number>;

/** The real SshExec, loading system/ssh.js (node:child_process) only when a command attaches. */
export const interactiveSsh: SshExec = async (argv) => (await import("../../../system/ssh.js")).sshInteractive(argv);


/** The Debian default image is built on first use; other missing images are the user's to build. */
export const AUTO_BUILD_IMAGE = "default";

/**
 * vm.create, building the default image first when it is missing (a fresh
 * host): `banger vm run -- uname -a` must work without a separate build step.
 * Only when no --image was given and the missing image is the default one.
 */
export async function createVm(ctx: CliContext, params: VmCreateParams, opts: { quiet: boolean; detach?: boolean | undefined }): Promise<{ operation_id: string; vm: { id: string; name: string } }> {
  try {
    return await ctx.call("vm.create", params, 30_000);
  } catch (e) {
    const missing = isRpcError(e) && e.code === "not_found" ? /^unknown image "([a-z0-9-]+)"/.exec(e.message)?.[1] : undefined;
    if (params.image !== undefined || missing !== AUTO_BUILD_IMAGE) throw e;
    // The build is its own operation, so it gets its own op id; the create keeps the invocation's.
    const buildOpId = opIdFor(ctx, 1);
    let ref;
    try {
      ref = await ctx.call("image.build", { name: AUTO_BUILD_IMAGE }, 30_000, buildOpId);
    } catch (buildErr) {
      // Another client's build finished between our create and this request: the image is there now.
      if (isRpcError(buildErr) && buildErr.code === "conflict" && /already exists/.test(buildErr.message)) return ctx.call("vm.create", params, 30_000);
      throw buildErr;
    }
    if (!opts.quiet) ctx.stderr.write(`image ${AUTO_BUILD_IMAGE} is not built yet; building it once (${ref.operation_id})\n`);
    const outcome = await followInterruptible(ctx, ref.operation_id, `image ${AUTO_BUILD_IMAGE}`, { quiet: opts.quiet, detach: opts.detach === true, opIdForCalls: buildOpId });
    const op = outcome.op;
    if (outcome.interrupted !== undefined || op === undefined) endInterrupted(ctx, outcome, `building image ${AUTO_BUILD_IMAGE}`, "it is kept for the next create");
    if (op.state !== "succeeded") throw new Error(`building image ${AUTO_BUILD_IMAGE} failed: ${op.error ?? "unknown error"}; retry with: banger image build`, { cause: e });
    return ctx.call("vm.create", params, 30_000);
  }
}

/** The flags of `banger vm VERB NAME...` commands without --force. */
export const NAMES_FLAGS = { json: JSON_FLAG } as const satisfies FlagTable;

/** `--all`: every VM the verb applies to (`AllVms.which`), instead of names. */
export const ALL_FLAG = { type: "boolean", short: "a", description: "act on every VM this applies to, instead of names" } as const;

/** Which VMs `--all` means for a verb, and what to say when there is none. */
export interface AllVms {
  readonly which: (vm: VmView) => boolean;
  readonly none: string;
}

/** What one name's action printed: a line for people, a value for --json. */
export interface NameResult {
  readonly line: string;
  readonly value: unknown;
}

/**
 * `banger vm VERB NAME...`: `act` runs for every name, even when an earlier one fails; the exit
 * code reports any failure. With --json the results print as one array (failures on stderr).
 */
export async function forEachName(args: readonly string[], ctx: CliContext, flags: FlagTable, act: (name: string, force: boolean, opId: string) => Promise<NameResult>, all?: AllVms): Promise<number> {
  const parsed = parseFlags(flags, args);
  const values: Readonly<Record<string, unknown>> = parsed.values;
  const names = await namesOrAll(ctx, parsed.positionals, values["all"] === true ? all : undefined);
  const json = values["json"] === true;
  if (names === undefined) {
    if (json) printJson(ctx.stdout, []);
    return 0;
  }
  const results: unknown[] = [];
  let failed = 0;
  for (const [i, name] of names.entries()) {
    const opId = opIdFor(ctx, i);
    try {
      const r = await act(name, values["force"] === true, opId);
      if (json) results.push(r.value);
      else ctx.stdout.write(`${r.line}\n`);
    } catch (e) {
      failed++;
      ctx.stderr.write(`error: ${name}: ${e instanceof Error ? e.message : String(e)} (${opId})\n`);
    }
  }
  if (json) printJson(ctx.stdout, results);
  return failed === 0 ? 0 : 1;
}

/**
 * The VMs a `--all`-capable verb acts on: the names given, or with --all every VM `all.which`
 * picks (undefined, after saying so, when there is none: nothing to do is not a failure).
 */
export async function namesOrAll(ctx: CliContext, positionals: readonly string[], all: AllVms | undefined): Promise<readonly string[] | undefined> {
  if (all === undefined) {
    if (positionals.length === 0) throw new UsageError("give at least one VM name");
    return positionals;
  }
  if (positionals.length > 0) throw new UsageError("give VM names or --all, not both");
  const names = (await ctx.call("vm.list", {})).vms.filter(all.which).map((v) => v.name);
  if (names.length === 0) ctx.stderr.write(`${all.none}\n`);
  return names.length === 0 ? undefined : names;
}
