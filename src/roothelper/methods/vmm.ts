import { existsSync, lstatSync, readFileSync, rmSync, statSync } from "node:fs";
import { lchown } from "node:fs/promises";
import { basename } from "node:path";
import { state } from "../../paths/paths.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import {
  privCleanupJailerChroot,
  privEnsureSocketAccess,
  privFindFirecrackerPid,
  privKillProcess,
  privLaunchFirecracker,
  privLaunchQemu,
  privProbeQemuKvm,
  privProcessRunning,
  privSignalProcess,
  privVmmShutdown,
  SIGNAL_ALLOW_LIST,
} from "../../rpc/priv/vmm.js";
import { launchDetached } from "../../system/launch.js";
import type { PeerCred } from "../../system/peercred.js";
import type { VmSpec } from "../../vmm/driver.js";
import { fcRequest, waitForApi } from "../../vmm/firecracker/api-client.js";
import { buildFirecrackerArgv, buildJailerArgv } from "../../vmm/firecracker/argv.js";
import { buildBootSteps, directPaths, type FcPaths } from "../../vmm/firecracker/boot-steps.js";
import { applyJail, jailLayout, planJail, removeJail } from "../../vmm/firecracker/jail.js";
import { resolveBinary } from "../../vmm/binaries.js";
import { checkVmmIdentity, findVmmPid } from "../../vmm/identity.js";
import { ChildFds, openVerified, type OpenMode } from "../../vmm/open-verified.js";
import { buildKvmProbeArgv, buildQemuArgv, kvmProbeVerdict } from "../../vmm/qemu/argv.js";
import { CommandError } from "../../system/runner.js";
import { qmpCtrlAltDel } from "../../vmm/qemu/qmp.js";
import type { HelperEnv } from "../env.js";
import * as v from "../validate.js";

/** How long a freshly spawned VMM gets to create its control socket. */
const SOCKET_WAIT_MS = 10_000;
const KILL_WAIT_MS = 5_000;

interface CommonParams {
  vm_id: string;
  vcpus: number;
  memory_mib: number;
  kernel_path: string;
  initrd_path?: string | undefined;
  cmdline: string;
  root_disk: string;
  work_disk: string;
  tap_name: string;
  mac: string;
  pid_file: string;
  console_log: string;
  vmm_log: string;
}

function regularFile(field: string, path: string): string {
  if (!lstatSync(path).isFile()) throw new RpcError("bad_params", `${field}: ${JSON.stringify(path)} is not a regular file`);
  return path;
}

/** A disk: a regular file in the state dir, or a banger dm snapshot device. */
function diskPath(env: HelperEnv, field: string, path: string): string {
  if (path.startsWith("/dev/")) return v.dmDevicePath(field, path);
  return regularFile(field, v.managedPath(field, path, [env.stateDir]));
}

/** A file the VMM or helper will create: inside `roots`, no symlink on the way, a regular file if it already exists. */
function newFile(field: string, path: string, roots: readonly string[]): string {
  v.managedPath(field, path, roots, { mustExist: false });
  if (existsSync(path) && !lstatSync(path).isFile()) throw new RpcError("bad_params", `${field}: ${JSON.stringify(path)} exists and is not a regular file`);
  return path;
}

/** A socket path the VMM will bind: inside the runtime dir, short enough for sun_path, a socket if present (clearStale removes it). */
function socketPath(field: string, path: string, env: HelperEnv): string {
  v.managedPath(field, path, [env.runtimeDir], { mustExist: false });
  if (existsSync(path) && !lstatSync(path).isSocket()) throw new RpcError("bad_params", `${field}: ${JSON.stringify(path)} exists and is not a socket`);
  if (Buffer.byteLength(path) > 107) throw new RpcError("bad_params", `${field}: ${JSON.stringify(path)} is longer than the 107-byte unix socket limit`);
  return path;
}

/** Validate every field shared by both launch methods and turn them into a VmSpec. */
function validateCommon(env: HelperEnv, p: CommonParams, controlSocket: string, accel: "kvm" | "tcg"): VmSpec {
  const vmId = v.vmId("vm_id", p.vm_id);
  const kernelPath = regularFile("kernel_path", v.managedPath("kernel_path", p.kernel_path, [env.stateDir]));
  const initrdPath = p.initrd_path === undefined ? undefined : regularFile("initrd_path", v.managedPath("initrd_path", p.initrd_path, [env.stateDir]));
  return {
    vmId,
    name: vmId,
    vcpus: v.intInRange("vcpus", p.vcpus, 1, 32),
    memoryMib: v.intInRange("memory_mib", p.memory_mib, 128, 65536),
    kernelPath,
    initrdPath,
    cmdline: v.kernelCmdline("cmdline", p.cmdline),
    rootDisk: diskPath(env, "root_disk", p.root_disk),
    workDisk: diskPath(env, "work_disk", p.work_disk),
    tap: v.tapName("tap_name", p.tap_name),
    mac: v.macAddress("mac", p.mac),
    controlSocket: socketPath("control socket", controlSocket, env),
    pidFile: newFile("pid_file", p.pid_file, [env.runtimeDir]),
    consoleLog: newFile("console_log", p.console_log, [env.stateDir]),
    vmmLog: newFile("vmm_log", p.vmm_log, [env.stateDir]),
    accel,
  };
}

/**
 * Leftovers of a previous run (pidfile, control socket) are removed, unless a
 * VMM of THIS VM is still alive: then launching again is a conflict.
 */
function clearStale(spec: VmSpec): void {
  const alive = findVmmPid(spec.vmId);
  if (alive !== null) throw new RpcError("conflict", `VM ${spec.vmId} already has a running VMM (pid ${alive}); stop it first`);
  for (const p of [spec.pidFile, spec.controlSocket]) rmSync(p, { force: true });
}

function alive(pid: number, vmId: string): boolean {
  return checkVmmIdentity(pid, vmId).ok;
}

/**
 * Liveness of a child THIS helper just spawned. Identity is not checked here:
 * a VMM may rewrite its title after exec; the pid cannot be recycled while the
 * helper (its parent) has not reaped it.
 */
function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\S+ \([^)]*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/**
 * Polls `cond` from every 5 ms up to every 25 ms: a VMM is usually up within tens of ms, but
 * under load it can take seconds, and each poll reads /proc.
 */
async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let stepMs = 5; Date.now() < deadline; stepMs = Math.min(25, stepMs * 1.5)) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

/** Real, effective, saved and fs uids from /proc/PID/status (empty when the process is gone). */
function uidsOf(pid: number): number[] {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("Uid:")) ?? "";
    return line.split(/\s+/).slice(1).filter((x) => x !== "").map(Number);
  } catch {
    return [];
  }
}

/** openVerified, with failures reported as bad_params naming the field. */
function verified(field: string, path: string, mode: OpenMode, owner?: { uid: number; gid: number }): number {
  try {
    return openVerified(field, path, mode, { allowLinkedDevice: path.startsWith("/dev/mapper/"), owner }).fd;
  } catch (e) {
    throw new RpcError("bad_params", e instanceof Error ? e.message : String(e));
  }
}

interface OpenedFiles {
  readonly kernel: string;
  readonly initrd: string | undefined;
  readonly rootDisk: string;
  readonly workDisk: string;
}

/** Kernel, initrd and disks of a spec as /proc/self/fd paths of verified descriptors. */
function openSpecFiles(spec: VmSpec, fds: ChildFds): OpenedFiles {
  return {
    kernel: fds.add(verified("kernel_path", spec.kernelPath, "read")),
    initrd: spec.initrdPath === undefined ? undefined : fds.add(verified("initrd_path", spec.initrdPath, "read")),
    rootDisk: fds.add(verified("root_disk", spec.rootDisk, "readwrite")),
    workDisk: fds.add(verified("work_disk", spec.workDisk, "readwrite")),
  };
}

/** Undo a failed launch: kill what was started, remove its files; report every failure. */
async function abortLaunch(pid: number | undefined, vmId: string, files: readonly string[]): Promise<void> {
  const errors: unknown[] = [];
  if (pid !== undefined && pidExists(pid)) {
    try {
      process.kill(pid, "SIGKILL");
      await waitFor(() => !pidExists(pid), KILL_WAIT_MS);
    } catch (e) {
      errors.push(e);
    }
  }
  for (const f of files) {
    try {
      rmSync(f, { force: true });
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, `cleanup after failed launch of ${vmId} failed`);
}

function failure(what: string, e: unknown): RpcError {
  return new RpcError("operation_failed", `${what}: ${e instanceof Error ? e.message : String(e)}`);
}

export function vmmMethods(env: HelperEnv): Registration<PeerCred>[] {
  const runAs = { uid: env.ownerUid, gid: env.ownerGid };
  const vmmCfg = env.config.vmm;

  return [
    implement(privLaunchQemu, async (p, ctx) => {
      const spec = validateCommon(env, p, p.qmp_socket, p.accel);
      let argv: string[];
      try {
        argv = buildQemuArgv(vmmCfg.qemu_bin, spec, runAs);
      } catch (e) {
        // A comma in a path would start a new qemu sub-option: a request problem, not an internal one.
        throw new RpcError("bad_params", e instanceof Error ? e.message : String(e));
      }
      clearStale(spec);
      const log = env.logger.child({ op_id: ctx.opId, vm_id: spec.vmId });
      // qemu opens files as root (before -runas): hand it descriptors we opened and verified, never paths.
      const fds = new ChildFds();
      let pid: number | undefined;
      try {
        const f = openSpecFiles(spec, fds);
        const consoleLog = fds.add(verified("console_log", spec.consoleLog, "append", runAs));
        argv = buildQemuArgv(vmmCfg.qemu_bin, { ...spec, kernelPath: f.kernel, initrdPath: f.initrd, rootDisk: f.rootDisk, workDisk: f.workDisk, consoleLog }, runAs);
        pid = launchDetached({ argv, logFile: spec.vmmLog, pidFile: spec.pidFile, extraFds: fds.fds, logOwner: runAs });
        const started = pid;
        // qemu creates the QMP socket after opening kvm/tap/disks: its appearance means setup succeeded.
        const up = await waitFor(() => existsSync(spec.controlSocket) || !pidExists(started), SOCKET_WAIT_MS);
        if (!up || !pidExists(started)) throw new Error(`qemu exited during setup; see ${spec.vmmLog}`);
        // -runas takes effect just before the guest starts; do not report success while the VMM is still root.
        const dropped = await waitFor(() => !pidExists(started) || uidsOf(started).every((u) => u === env.ownerUid), SOCKET_WAIT_MS);
        if (!dropped || !pidExists(started)) throw new Error(`qemu did not drop to uid ${env.ownerUid} (or exited); see ${spec.vmmLog}`);
      } catch (e) {
        await abortLaunch(pid, spec.vmId, [spec.pidFile, spec.controlSocket]);
        throw e instanceof RpcError ? e : failure(`launching qemu for ${spec.vmId}`, e);
      } finally {
        fds.closeAll();
      }
      log.info("qemu launched", { pid, accel: spec.accel });
      return { pid, argv };
    }),

    implement(privLaunchFirecracker, async (p, ctx) => {
      const base = validateCommon(env, p, p.api_socket, "kvm");
      const spec: VmSpec = {
        ...base,
        metricsPath: p.metrics_path === undefined ? undefined : newFile("metrics_path", p.metrics_path, [env.stateDir]),
        vsock:
          p.vsock_cid === undefined && p.vsock_path === undefined
            ? undefined
            : { cid: v.intInRange("vsock_cid", p.vsock_cid ?? -1, 3, 0xfffffffe), udsPath: socketPath("vsock_path", p.vsock_path ?? "", env) },
      };
      clearStale(spec);
      const jailerBin = vmmCfg.jailer === "never" ? undefined : resolveBinary(vmmCfg.jailer_bin);
      if (vmmCfg.jailer === "always" && jailerBin === undefined) throw new RpcError("operation_failed", `vmm.jailer = "always" but ${vmmCfg.jailer_bin} was not found; install firecracker's jailer or set vmm.jailer`);
      const log = env.logger.child({ op_id: ctx.opId, vm_id: spec.vmId });
      let argv: readonly string[];
      let paths: FcPaths;
      let apiSocket: string;
      const cleanupFiles = [spec.pidFile, spec.controlSocket];
      const fds = new ChildFds();
      if (jailerBin !== undefined) {
        const layout = jailLayout(env.stateDir, vmmCfg.firecracker_bin, spec.vmId);
        v.managedPath("jail", layout.vmDir, [env.stateDir], { mustExist: false });
        if (existsSync(layout.vmDir)) await removeJail(layout.vmDir);
        const plan = planJail(spec, layout, (f) => statSync(f).isBlockDevice());
        await applyJail(plan, env.ownerUid, env.ownerGid, env.runner);
        argv = buildJailerArgv({ jailerBin, firecrackerBin: vmmCfg.firecracker_bin, vmId: spec.vmId, uid: env.ownerUid, gid: env.ownerGid, chrootBaseDir: layout.chrootBaseDir, apiSocketInJail: layout.apiSocketInJail });
        paths = plan.paths;
        apiSocket = layout.apiSocketHost;
      } else {
        // No jailer: firecracker keeps root, so only the helper ever talks to its API (see rpc/priv/vmm.ts).
        argv = buildFirecrackerArgv(vmmCfg.firecracker_bin, { apiSocket: spec.controlSocket, vmId: spec.vmId });
        // Root firecracker opens what the API names: name descriptors we opened and verified instead of paths.
        paths = {
          ...directPaths(spec),
          ...openSpecFiles(spec, fds),
          logPath: fds.add(verified("vmm_log", spec.vmmLog, "append", runAs)),
          metricsPath: spec.metricsPath === undefined ? undefined : fds.add(verified("metrics_path", spec.metricsPath, "append", runAs)),
        };
        apiSocket = spec.controlSocket;
        if (spec.vsock !== undefined) cleanupFiles.push(spec.vsock.udsPath);
        for (const f of cleanupFiles) rmSync(f, { force: true });
      }
      const steps = buildBootSteps(spec, paths);
      const done: string[] = [];
      let pid: number | undefined;
      try {
        // Firecracker writes the guest serial console to stdout: that is the console log.
        pid = launchDetached({ argv, logFile: spec.consoleLog, pidFile: spec.pidFile, extraFds: fds.fds, logOwner: runAs });
        const started = pid;
        await waitForApi(apiSocket, SOCKET_WAIT_MS, () => pidExists(started));
        for (const step of steps) {
          try {
            await fcRequest(apiSocket, step.method, step.path, step.body);
          } catch (e) {
            throw new Error(`boot step ${step.name} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
          }
          done.push(step.name);
        }
      } catch (e) {
        await abortLaunch(pid, spec.vmId, cleanupFiles);
        throw failure(`launching firecracker for ${spec.vmId}`, e);
      } finally {
        fds.closeAll();
      }
      log.info("firecracker launched", { pid, jailed: jailerBin !== undefined, steps: done });
      return { pid, argv: [...argv], jailed: jailerBin !== undefined, steps: done, api_socket: apiSocket };
    }),

    implement(privProbeQemuKvm, async (p) => {
      const kernel = regularFile("kernel_path", v.managedPath("kernel_path", p.kernel_path, [env.stateDir]));
      const timeoutMs = v.intInRange("timeout_ms", p.timeout_ms, 1000, 60_000);
      const started = Date.now();
      // Only a kernel is read (validated, inside the state dir), so a path is acceptable here; qemu drops with -runas.
      const argv = buildKvmProbeArgv(vmmCfg.qemu_bin, kernel, runAs);
      try {
        const { stdout } = await env.runner.run(argv, { timeoutMs });
        return kvmProbeVerdict(stdout.toString("utf8"), Date.now() - started);
      } catch (e) {
        // A timeout (SIGKILL) or qemu refusing -accel kvm: not usable, say why.
        const out = e instanceof CommandError ? `${e.stdout}\n${e.stderr.trim() === "" ? e.message : e.stderr}` : String(e);
        return { ...kvmProbeVerdict(out, Date.now() - started), ok: false };
      }
    }),

    implement(privVmmShutdown, async (p) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      const roots = [env.runtimeDir, state.jailerBase(env.stateDir)];
      const sock = v.managedPath("control_socket", p.control_socket, roots);
      if (!lstatSync(sock).isSocket()) throw new RpcError("bad_params", `control_socket: ${JSON.stringify(sock)} is not a socket`);
      v.vmmPid("pid", p.pid, vmId);
      try {
        if (p.kind === "qemu") {
          v.vmmPid("pid", p.pid, sock);
          await qmpCtrlAltDel(sock);
        } else {
          await fcRequest(sock, "PUT", "/actions", { action_type: "SendCtrlAltDel" });
        }
      } catch (e) {
        throw failure(`asking ${vmId} to shut down`, e);
      }
      return { sent: true };
    }),

    implement(privSignalProcess, (p) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      if (!(SIGNAL_ALLOW_LIST as readonly string[]).includes(p.signal)) throw new RpcError("bad_params", `signal: ${JSON.stringify(p.signal)} is not one of ${SIGNAL_ALLOW_LIST.join(", ")}`);
      const pid = v.vmmPid("pid", p.pid, vmId);
      process.kill(pid, p.signal);
      return { sent: true };
    }),

    implement(privKillProcess, async (p) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      const pid = v.vmmPid("pid", p.pid, vmId);
      process.kill(pid, "SIGKILL");
      return { exited: await waitFor(() => !alive(pid, vmId), KILL_WAIT_MS) };
    }),

    implement(privProcessRunning, (p) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      if (!Number.isSafeInteger(p.pid) || p.pid <= 1) throw new RpcError("bad_params", `pid: ${p.pid} is not a valid pid`);
      return { running: alive(p.pid, vmId) };
    }),

    implement(privFindFirecrackerPid, (p) => ({ pid: findVmmPid(v.vmId("vm_id", p.vm_id)) })),

    implement(privEnsureSocketAccess, async (p) => {
      const roots = [env.runtimeDir, state.jailerBase(env.stateDir)];
      const sock = v.managedPath("socket_path", p.socket_path, roots);
      if (!lstatSync(sock).isSocket()) throw new RpcError("bad_params", `socket_path: ${JSON.stringify(sock)} is not a socket`);
      // lchown acts on the entry itself: a leaf swapped for a symlink after the check is not followed.
      await lchown(sock, env.ownerUid, env.ownerGid);
      return { path: sock };
    }),

    implement(privCleanupJailerChroot, async (p) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      const dir = state.jailerVmDir(env.stateDir, basename(vmmCfg.firecracker_bin), vmId);
      v.managedPath("vm_id", dir, [env.stateDir], { mustExist: false });
      const running = findVmmPid(vmId);
      if (running !== null) throw new RpcError("conflict", `VM ${vmId} still has a running VMM (pid ${running}); stop it before removing its jail`);
      return { removed: await removeJail(dir) };
    }),
  ];
}
