#!/usr/bin/env node
/*
 * A Firecracker API double for tests: NEVER shipped as a VMM.
 *
 * Takes firecracker's flags (`--api-sock P --id ID [--config-file F]
 * [--log-path F] [--level L] [--no-seccomp] ...`), serves the Firecracker API
 * on the unix socket with its validation rules (required fields, unknown
 * fields rejected, resource-id charset, path/body id match, pre-/post-boot
 * rules, Content-Length-only bodies, 400 + {"fault_message"}), and on
 * InstanceStart boots the configured kernel/initrd/drives/tap with qemu TCG
 * (`-M microvm`, which boots the ELF vmlinux) as a child whose serial goes to
 * our stdout, as Firecracker's does. SendCtrlAltDel presses ctrl-alt-del on
 * the guest; when the guest reboots (reboot=k) qemu exits and so do we (0).
 *
 * Snapshots map onto qemu migration: PUT /snapshot/create (VM Paused) migrates
 * the stopped qemu into snapshot_path over a unix socket next to it, and writes
 * the double's boot configuration (what real Firecracker keeps inside its
 * snapshot: kernel, drive paths, taps, machine) as JSON into mem_file_path (the
 * guest memory is in qemu's stream); PUT /snapshot/load, in a fresh process
 * before any boot resource, reads that configuration back, applies
 * network_overrides, and starts qemu with the same devices and
 * `-incoming fd:N -S` on the snapshot file, paused unless resume_vm.
 *
 * process.title makes /proc/PID/cmdline read `firecracker --api-sock P --id ID`
 * so banger's VMM identity check treats it like the real binary, with no
 * test-only exception in production code.
 */
import { TCG_KERNEL_ARGS } from "../../src/image/cmdline.js";
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, closeSync, createWriteStream, existsSync, fsyncSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createConnection, createServer as createNetServer } from "node:net";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { vsockAgent } from "./vsock-agent.js";

const VALUE_FLAGS = new Set(["--api-sock", "--id", "--config-file", "--log-path", "--level", "--module", "--metrics-path", "--seccomp-filter", "--metadata", "--mmds-size-limit", "--http-api-max-payload-size", "--start-time-us", "--start-time-cpu-us", "--parent-cpu-time-us"]);
const BOOL_FLAGS = new Set(["--no-api", "--show-level", "--show-log-origin", "--boot-timer", "--no-seccomp", "--enable-pci"]);

function die(code: number, msg: string): never {
  process.stderr.write(`firecracker-double: ${msg}\n`);
  process.exit(code);
}

function parseFlags(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a.includes("=")) die(153, `Arguments parsing error: Found argument '${a}' which wasn't expected (use --flag value)`);
    if (out.has(a)) die(153, `Arguments parsing error: The argument '${a}' was provided more than once.`);
    if (BOOL_FLAGS.has(a)) {
      out.set(a, "true");
    } else if (VALUE_FLAGS.has(a)) {
      const val = argv[i + 1];
      if (val === undefined || val.startsWith("--")) die(153, `Arguments parsing error: argument '${a}' requires a value`);
      out.set(a, val);
      i++;
    } else {
      die(153, `Arguments parsing error: Found argument '${a}' which wasn't expected`);
    }
  }
  return out;
}

const flags = parseFlags(process.argv.slice(2));
const apiSock = flags.get("--api-sock") ?? "/run/firecracker.socket";
const instanceId = flags.get("--id") ?? "anonymous-instance";
if (!/^[A-Za-z0-9-]{1,64}$/.test(instanceId)) die(153, `Invalid instance ID: ${instanceId}`);
process.title = `firecracker --api-sock ${apiSock} --id ${instanceId}`;

const qemuBin = process.env["FC_DOUBLE_QEMU"] ?? "qemu-system-x86_64";
// An ABSTRACT socket (no file): if we are SIGKILLed nothing is left on disk that real Firecracker would not leave.
// tight=off: Node pads abstract addresses to the full sun_path, qemu must listen on the same padded name.
const qmpName = `bgt-fc-double-${instanceId}-${process.pid}`;

// ---- request bodies (deny unknown fields like serde's deny_unknown_fields) ----
const tokenBucket = z.object({ size: z.number().int().min(0), refill_time: z.number().int().min(0), one_time_burst: z.number().int().min(0).optional() }).strict();
const rateLimiter = z.object({ bandwidth: tokenBucket.optional(), ops: tokenBucket.optional() }).strict();
const schemas = {
  machineConfig: z.object({ vcpu_count: z.number().int().min(1).max(32), mem_size_mib: z.number().int().min(1), smt: z.boolean().optional(), track_dirty_pages: z.boolean().optional(), huge_pages: z.enum(["None", "2M"]).optional(), cpu_template: z.string().optional() }).strict(),
  bootSource: z.object({ kernel_image_path: z.string().min(1), boot_args: z.string().max(2048).optional(), initrd_path: z.string().optional() }).strict(),
  drive: z.object({ drive_id: z.string(), is_root_device: z.boolean(), path_on_host: z.string().optional(), is_read_only: z.boolean().optional(), partuuid: z.string().optional(), cache_type: z.enum(["Unsafe", "Writeback"]).optional(), io_engine: z.enum(["Sync", "Async"]).optional(), rate_limiter: rateLimiter.optional(), socket: z.string().optional() }).strict(),
  net: z.object({ iface_id: z.string(), host_dev_name: z.string().min(1).max(15), guest_mac: z.string().regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/).optional(), rx_rate_limiter: rateLimiter.optional(), tx_rate_limiter: rateLimiter.optional(), mtu: z.number().int().min(68).max(65535).optional() }).strict(),
  vsock: z.object({ guest_cid: z.number().int().min(3), uds_path: z.string().min(1), vsock_id: z.string().optional() }).strict(),
  action: z.object({ action_type: z.enum(["InstanceStart", "SendCtrlAltDel", "FlushMetrics"]) }).strict(),
  vmState: z.object({ state: z.enum(["Paused", "Resumed"]) }).strict(),
  logger: z.object({ log_path: z.string().optional(), level: z.string().regex(/^(error|warning|info|debug|trace|off)$/i).optional(), show_level: z.boolean().optional(), show_log_origin: z.boolean().optional(), module: z.string().optional() }).strict(),
  metrics: z.object({ metrics_path: z.string().min(1) }).strict(),
  snapshotCreate: z.object({ snapshot_path: z.string().min(1), mem_file_path: z.string().min(1), snapshot_type: z.enum(["Full", "Diff"]).optional(), version: z.string().optional() }).strict(),
  snapshotLoad: z.object({
    snapshot_path: z.string().min(1),
    mem_file_path: z.string().min(1).optional(),
    mem_backend: z.object({ backend_type: z.enum(["File", "Uffd"]), backend_path: z.string().min(1) }).strict().optional(),
    enable_diff_snapshots: z.boolean().optional(),
    track_dirty_pages: z.boolean().optional(),
    resume_vm: z.boolean().optional(),
    network_overrides: z.array(z.object({ iface_id: z.string(), host_dev_name: z.string().min(1).max(15) }).strict()).optional(),
  }).strict(),
};

/** What the double writes as a snapshot's "memory file": the boot configuration real Firecracker keeps in its snapshot. */
const savedConfig = z.object({
  machine: schemas.machineConfig,
  bootSource: schemas.bootSource,
  drives: z.array(schemas.drive),
  nets: z.array(schemas.net),
  // Firecracker keeps the vsock device in the snapshot and binds its uds_path again at load.
  vsock: schemas.vsock.optional(),
});

class Fault extends Error {}

// ---- VM state ----
let vmState: "Not started" | "Running" | "Paused" = "Not started";
let machine: z.infer<typeof schemas.machineConfig> = { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: "None" };
let bootSource: z.infer<typeof schemas.bootSource> | undefined;
const drives = new Map<string, z.infer<typeof schemas.drive>>();
const nets = new Map<string, z.infer<typeof schemas.net>>();
let vsock: z.infer<typeof schemas.vsock> | undefined;
/** The vsock device mapped onto the guest agent's port (vsock-agent.ts), once booted. */
let agent: ReturnType<typeof vsockAgent> | undefined;
let logPath: string | undefined = flags.get("--log-path");
let metricsPath: string | undefined;
let qemu: ChildProcess | undefined;
/** Set by any PUT of a boot resource: from then on /snapshot/load is refused, as by Firecracker. */
let bootPath = false;

function log(msg: string): void {
  if (logPath !== undefined) appendFileSync(logPath, `${new Date().toISOString()} [${instanceId}:main:Info] ${msg}\n`);
}

const ID_RE = /^[A-Za-z0-9_]+$/;
function checkId(pathId: string, bodyId: string): void {
  if (!ID_RE.test(pathId)) throw new Fault("API Resource IDs can only contain alphanumeric characters and underscores.");
  if (pathId !== bodyId) throw new Fault("The id from the path does not match the id from the body!");
}

function preBoot(): void {
  if (vmState !== "Not started") throw new Fault("The requested operation is not supported after starting the microVM.");
}
function postBoot(): void {
  if (vmState === "Not started") throw new Fault("The requested operation is not supported before starting the microVM.");
}

function parse<T extends z.ZodTypeAny>(schema: T, body: unknown, category: string): z.infer<T> {
  const r = schema.safeParse(body);
  if (!r.success) throw new Fault(`${category} error: ${r.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ")}`);
  return r.data as z.infer<T>;
}

/** One QMP command on the qemu underneath (a fresh connection each time, like the real control path); resolves with the reply line. */
function qmpCommand(execute: string, args?: Record<string, unknown>): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(`\0${qmpName}`);
    let buf = "";
    let n = 0;
    s.on("error", reject);
    s.on("data", (c: Buffer) => {
      buf += c.toString();
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        if (line.trim() === "" || line.includes('"event"')) continue;
        n++;
        if (n === 1) s.write(JSON.stringify({ execute: "qmp_capabilities" }) + "\n");
        else if (n === 2) s.write(JSON.stringify(args === undefined ? { execute } : { execute, arguments: args }) + "\n");
        else {
          s.end();
          if (line.includes('"error"')) reject(new Error(line));
          else resolve(line);
        }
      }
    });
  });
}

function startInstance(): void {
  if (bootSource === undefined) throw new Fault("Start microvm error: Missing kernel configuration.");
  spawnGuest(guestArgv(bootSource), []);
  vmState = "Running";
  log("InstanceStart: guest booting");
}

/** The qemu argv of the configured guest: the same for a boot and for a restore of its snapshot. */
function guestArgv(boot: z.infer<typeof schemas.bootSource>): string[] {
  const list = [...drives.values()];
  const root = list.find((d) => d.is_root_device);
  const ordered = root === undefined ? list : [root, ...list.filter((d) => d !== root)];
  for (const [p, what] of [[boot.kernel_image_path, "kernel"], [boot.initrd_path, "initrd"], ...ordered.map((d) => [d.path_on_host, `drive ${d.drive_id}`])] as const) {
    if (p !== undefined && !existsSync(p)) throw new Fault(`Start microvm error: cannot open ${what} file ${p}`);
  }
  // Like Firecracker: pci=off is added, and root=/dev/vda rw when a root drive is configured.
  let cmdline = boot.boot_args ?? "reboot=k panic=1 pci=off";
  if (root !== undefined) cmdline += ` root=/dev/vda ${root.is_read_only === true ? "ro" : "rw"}`;
  // Real Firecracker runs on KVM; this double emulates with TCG, whose clock needs the same fix banger's qemu driver applies.
  if (!cmdline.includes("tsc_early_khz")) cmdline += ` ${TCG_KERNEL_ARGS}`;
  const argv = ["-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on", "-accel", "tcg", "-cpu", "max", "-smp", String(machine.vcpu_count), "-m", `${machine.mem_size_mib}M`, "-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-device", "i8042", "-kernel", boot.kernel_image_path];
  if (boot.initrd_path !== undefined) argv.push("-initrd", boot.initrd_path);
  argv.push("-append", cmdline);
  ordered.forEach((d, i) => {
    // Firecracker answers a failed host write with an I/O error to the guest; qemu would pause the VM.
    argv.push("-drive", `id=d${i},file=${d.path_on_host ?? ""},format=raw,if=none,werror=report,rerror=report,readonly=${d.is_read_only === true ? "on" : "off"}`, "-device", `virtio-blk-device,drive=d${i}`);
  });
  [...nets.values()].forEach((n, i) => {
    argv.push("-netdev", `tap,id=n${i},ifname=${n.host_dev_name},script=no,downscript=no`, "-device", `virtio-net-device,netdev=n${i}${n.guest_mac === undefined ? "" : `,mac=${n.guest_mac.toLowerCase()}`},guest_announce=off`);
  });
  if (vsock !== undefined) {
    agent = vsockAgent(vsock.uds_path);
    argv.push(...agent.argv);
  }
  argv.push("-serial", "stdio", "-chardev", `socket,id=qmp,path=${qmpName},abstract=on,tight=off,server=on,wait=off`, "-mon", "chardev=qmp,mode=control");
  return argv;
}

/** Start qemu on `argv`; `extraFds` are our descriptors it also gets, each at the number given. */
function spawnGuest(argv: readonly string[], extraFds: readonly { readonly at: number; readonly fd: number }[]): void {
  // setpriv --pdeathsig: if we are SIGKILLed (banger's kill path) the guest must die with us,
  // as it would with a real Firecracker, which IS the guest.
  // Paths may be /proc/self/fd/N (banger hands a root firecracker verified descriptors): give qemu the same fd numbers.
  const stdio: ("ignore" | "inherit" | number)[] = ["ignore", "inherit", "inherit"];
  for (const a of argv) {
    for (const m of a.matchAll(/\/proc\/self\/fd\/([0-9]+)/g)) {
      const n = Number(m[1]);
      while (stdio.length <= n) stdio.push("ignore");
      stdio[n] = n;
    }
  }
  for (const { at, fd } of extraFds) {
    while (stdio.length <= at) stdio.push("ignore");
    stdio[at] = fd;
  }
  qemu = spawn("setpriv", ["--pdeathsig", "SIGKILL", "--", qemuBin, ...argv], { stdio });
  qemu.on("exit", (code, signal) => {
    log(`guest VMM exited (code ${code ?? "null"}, signal ${signal ?? "none"})`);
    shutdown(code ?? 1);
  });
}

/** qemu's run state ("paused", "inmigrate", "running", ...). */
async function qemuStatus(): Promise<string> {
  const reply = JSON.parse(await qmpCommand("query-status")) as { return?: { status?: string } };
  return reply.return?.status ?? "unknown";
}

async function snapshotCreate(body: unknown): Promise<void> {
  postBoot();
  const req = parse(schemas.snapshotCreate, body, "Create snapshot");
  if (vmState !== "Paused") throw new Fault("Create snapshot error: the microVM must be paused before a snapshot is created (PATCH /vm {\"state\": \"Paused\"}).");
  if (req.snapshot_type === "Diff") throw new Fault("Create snapshot error: diff snapshots need track_dirty_pages, which this double does not emulate.");
  if (bootSource === undefined) throw new Fault("Create snapshot error: no boot source");
  // The stream goes through a unix socket next to the snapshot file: qemu 7.2 has no file: migration URI.
  const sock = join(dirname(req.snapshot_path), `.${basename(req.snapshot_path)}.mig`);
  rmSync(sock, { force: true });
  const out = openSync(req.snapshot_path, "w", 0o600);
  const received = new Promise<void>((resolve, reject) => {
    const server = createNetServer((conn) => {
      server.close();
      void pipeline(conn, createWriteStream("", { fd: out, autoClose: false })).then(resolve, reject);
    });
    server.on("error", reject);
    server.listen(sock, () => {
      qmpCommand("migrate", { uri: `unix:${sock}` }).catch(reject);
    });
  });
  try {
    await received;
    for (;;) {
      const info = JSON.parse(await qmpCommand("query-migrate")) as { return?: { status?: string; "error-desc"?: string } };
      const st = info.return?.status;
      if (st === "completed") break;
      if (st === "failed" || st === "cancelled") throw new Fault(`Create snapshot error: ${info.return?.["error-desc"] ?? st}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    fsyncSync(out);
  } catch (e) {
    throw e instanceof Fault ? e : new Fault(`Create snapshot error: ${(e as Error).message}`);
  } finally {
    closeSync(out);
    rmSync(sock, { force: true });
  }
  const config: z.infer<typeof savedConfig> = { machine, bootSource, drives: [...drives.values()], nets: [...nets.values()], ...(vsock === undefined ? {} : { vsock }) };
  writeFileSync(req.mem_file_path, JSON.stringify(config), { mode: 0o600 });
  log(`snapshot created at ${req.snapshot_path}`);
}

async function snapshotLoad(body: unknown): Promise<void> {
  if (vmState !== "Not started") throw new Fault("The requested operation is not supported after starting the microVM.");
  if (bootPath) throw new Fault("Loading a microVM snapshot not allowed after configuring boot-specific resources.");
  const req = parse(schemas.snapshotLoad, body, "Load snapshot");
  if ((req.mem_backend === undefined) === (req.mem_file_path === undefined)) throw new Fault("Load snapshot error: exactly one of mem_backend or mem_file_path must be given.");
  const memPath = req.mem_backend?.backend_path ?? req.mem_file_path ?? "";
  if (req.mem_backend?.backend_type === "Uffd") throw new Fault("Load snapshot error: the Uffd memory backend is not emulated by this double.");
  let config: z.infer<typeof savedConfig>;
  try {
    config = savedConfig.parse(JSON.parse(readFileSync(memPath, "utf8")));
  } catch (e) {
    throw new Fault(`Load snapshot error: cannot read the memory file ${memPath}: ${(e as Error).message}`);
  }
  for (const o of req.network_overrides ?? []) {
    if (!config.nets.some((n) => n.iface_id === o.iface_id)) throw new Fault(`Load snapshot error: Invalid network override: no network interface ${o.iface_id} in the snapshot`);
  }
  let state: number;
  try {
    state = openSync(req.snapshot_path, "r");
  } catch (e) {
    throw new Fault(`Load snapshot error: cannot open the snapshot file ${req.snapshot_path}: ${(e as Error).message}`);
  }
  // Checked: from here on the process is the snapshot's (a failed load ends it, as it ends Firecracker).
  machine = config.machine;
  bootSource = config.bootSource;
  for (const d of config.drives) drives.set(d.drive_id, d);
  for (const n of config.nets) nets.set(n.iface_id, n);
  vsock = config.vsock;
  for (const o of req.network_overrides ?? []) {
    const n = nets.get(o.iface_id);
    if (n !== undefined) nets.set(o.iface_id, { ...n, host_dev_name: o.host_dev_name });
  }
  const argv = guestArgv(bootSource);
  // Above every /proc/self/fd number the argv names, so none is shadowed.
  const at = Math.max(3, ...argv.flatMap((a) => [...a.matchAll(/\/proc\/self\/fd\/([0-9]+)/g)].map((m) => Number(m[1]) + 1)));
  spawnGuest([...argv, "-incoming", `fd:${at}`, "-S", "-global", "migration.announce-rounds=0"], [{ at, fd: state }]);
  closeSync(state);
  const deadline = Date.now() + 60_000;
  for (;;) {
    let st = "inmigrate";
    try {
      st = await qemuStatus();
    } catch {
      // the monitor is not up yet
    }
    if (st === "paused") break;
    if (st !== "inmigrate" && st !== "unknown") throw new Fault(`Load snapshot error: qemu is ${st} after the load`);
    if (Date.now() > deadline) throw new Fault("Load snapshot error: the state did not load within 60 s");
    await new Promise((r) => setTimeout(r, 20));
  }
  vmState = "Paused";
  if (req.resume_vm === true) {
    await qmpCommand("cont");
    vmState = "Running";
  }
  log(`snapshot loaded from ${req.snapshot_path}`);
}

function shutdown(code: number): void {
  agent?.cleanup();
  for (const p of [apiSock, vsock?.uds_path]) if (p !== undefined) rmSync(p, { force: true });
  process.exit(code);
}

async function handle(method: string, url: string, body: unknown): Promise<[number, unknown]> {
  const path = url.split("?")[0] ?? "/";
  const parts = path.split("/").filter((p) => p !== "");
  const key = `${method} /${parts[0] ?? ""}`;
  switch (key) {
    case "GET /":
      return [200, { id: instanceId, state: vmState, vmm_version: "1.10.0-double", app_name: "Firecracker" }];
    case "GET /version":
      return [200, { firecracker_version: "1.10.0-double" }];
    case "GET /machine-config":
      return [200, machine];
    case "GET /vm":
      if (parts[1] !== "config") break;
      return [200, { "boot-source": bootSource ?? null, drives: [...drives.values()], "machine-config": machine, "network-interfaces": [...nets.values()], vsock: vsock ?? null }];
    case "PUT /machine-config":
      preBoot();
      bootPath = true;
      machine = { smt: false, track_dirty_pages: false, huge_pages: "None", ...parse(schemas.machineConfig, body, "Machine config") };
      if (machine.smt === true && machine.vcpu_count > 1 && machine.vcpu_count % 2 !== 0) throw new Fault("Machine config error: The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.");
      return [204, undefined];
    case "PUT /boot-source":
      preBoot();
      bootPath = true;
      bootSource = parse(schemas.bootSource, body, "Boot source");
      if (!existsSync(bootSource.kernel_image_path)) throw new Fault(`Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)`);
      if (bootSource.initrd_path !== undefined && !existsSync(bootSource.initrd_path)) throw new Fault(`Boot source error: The initrd file cannot be opened: No such file or directory (os error 2)`);
      return [204, undefined];
    case "PUT /drives": {
      preBoot();
      bootPath = true;
      const d = parse(schemas.drive, body, "Drive config");
      checkId(parts[1] ?? "", d.drive_id);
      if (d.path_on_host === undefined || !existsSync(d.path_on_host)) throw new Fault(`Drive config error: Unable to open the block device backing file: ${d.path_on_host ?? "(none)"}`);
      if (d.is_root_device && [...drives.values()].some((o) => o.is_root_device && o.drive_id !== d.drive_id)) throw new Fault("Drive config error: A root block device already exists!");
      drives.set(d.drive_id, d);
      return [204, undefined];
    }
    case "PUT /network-interfaces": {
      preBoot();
      bootPath = true;
      const n = parse(schemas.net, body, "Network interface");
      checkId(parts[1] ?? "", n.iface_id);
      if ([...nets.values()].some((o) => o.host_dev_name === n.host_dev_name && o.iface_id !== n.iface_id)) throw new Fault("Network interface error: The host device name is already in use.");
      nets.set(n.iface_id, n);
      return [204, undefined];
    }
    case "PUT /vsock":
      preBoot();
      bootPath = true;
      vsock = parse(schemas.vsock, body, "Vsock");
      if (existsSync(vsock.uds_path)) throw new Fault(`Vsock error: Error binding to the host-side Unix socket: Address in use (os error 98)`);
      return [204, undefined];
    case "PUT /logger": {
      preBoot();
      const l = parse(schemas.logger, body, "Logger");
      logPath = l.log_path;
      log("logger configured");
      return [204, undefined];
    }
    case "PUT /metrics": {
      preBoot();
      if (metricsPath !== undefined) throw new Fault("Metrics error: Reinitialization of metrics not allowed.");
      metricsPath = parse(schemas.metrics, body, "Metrics").metrics_path;
      appendFileSync(metricsPath, JSON.stringify({ utc_timestamp_ms: Date.now() }) + "\n");
      return [204, undefined];
    }
    case "PUT /snapshot":
      if (parts[1] === "create" && parts.length === 2) {
        await snapshotCreate(body);
        return [204, undefined];
      }
      if (parts[1] === "load" && parts.length === 2) {
        await snapshotLoad(body);
        return [204, undefined];
      }
      break;
    case "PATCH /vm": {
      // Firecracker's pause/resume, mapped onto qemu's stop/cont.
      if (parts.length !== 1) break;
      postBoot();
      const { state } = parse(schemas.vmState, body, "VM state");
      try {
        await qmpCommand(state === "Paused" ? "stop" : "cont");
      } catch (e) {
        throw new Fault(`Internal error: ${state === "Paused" ? "pause" : "resume"}: ${(e as Error).message}`);
      }
      vmState = state === "Paused" ? "Paused" : "Running";
      log(`VM ${state}`);
      return [204, undefined];
    }
    case "PUT /actions": {
      const a = parse(schemas.action, body, "Action");
      if (a.action_type === "InstanceStart") {
        preBoot();
        startInstance();
      } else if (a.action_type === "SendCtrlAltDel") {
        postBoot();
        try {
          await qmpCommand("send-key", { keys: ["ctrl", "alt", "delete"].map((k) => ({ type: "qcode", data: k })) });
        } catch (e) {
          throw new Fault(`Internal error: ctrl-alt-del: ${(e as Error).message}`);
        }
        log("SendCtrlAltDel sent");
      } else {
        postBoot();
        if (metricsPath !== undefined) appendFileSync(metricsPath, JSON.stringify({ utc_timestamp_ms: Date.now() }) + "\n");
      }
      return [204, undefined];
    }
    default:
      break;
  }
  throw new Fault(`Invalid request method and/or path: ${method} ${path}.`);
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  const headers: Record<string, string | number> = { Server: "Firecracker API", Connection: "keep-alive" };
  if (text !== "") {
    headers["Content-Type"] = "application/json";
    headers["Content-Length"] = Buffer.byteLength(text);
  }
  res.writeHead(status, headers);
  res.end(text);
}

async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    chunks.push(c as Buffer);
  }
  const method = req.method ?? "GET";
  try {
    if (size > 51200) {
      reply(res, 400, { error: "Request payload with size exceeding the limit.\nAll previous unanswered requests will be dropped." });
      return;
    }
    // Firecracker reads bodies by Content-Length only: without it a PUT is bodiless.
    const hasLength = req.headers["content-length"] !== undefined;
    const raw = hasLength ? Buffer.concat(chunks).toString("utf8") : "";
    if (method === "GET" && raw !== "") throw new Fault("GET request cannot have a body.");
    if ((method === "PUT" || method === "PATCH") && raw === "") throw new Fault(`Empty ${method} request.`);
    let body: unknown;
    if (raw !== "") {
      try {
        body = JSON.parse(raw);
      } catch (e) {
        throw new Fault(`An error occurred when deserializing the json body of a request: ${(e as Error).message}.`);
      }
    }
    const [status, out] = await handle(method, req.url ?? "/", body);
    reply(res, status, out);
  } catch (e) {
    reply(res, 400, { fault_message: e instanceof Error ? e.message : String(e) });
  }
}

if (existsSync(apiSock)) die(1, `Failed to open the API socket at: ${apiSock}. Check that it is not already used.`);
const server = createServer((req, res) => { void onRequest(req, res); });
server.listen(apiSock, () => {
  process.stdout.write(`Listening on API socket (${apiSock}).\nAPI server started.\n`);
});
server.on("error", (e) => die(1, `Failed to open the API socket at: ${apiSock}: ${e.message}`));
// Firecracker does not handle SIGTERM (default action: die); take the guest down with us.
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
  process.on(sig, () => {
    qemu?.kill("SIGKILL");
    shutdown(sig === "SIGHUP" ? 156 : 143);
  });
}
