import { closeSync } from "node:fs";
import { basename, join } from "node:path";
import { HELPER_VM_LEAVES } from "../../paths/paths.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import {
  privCleanupVmm,
  privKillProcess,
  privLaunchFirecracker,
  privLaunchQemu,
  privProbeQemuKvm,
  privSignalProcess,
  privVmmSetPaused,
  privVmmShutdown,
  SIGNAL_ALLOW_LIST,
} from "../../rpc/priv/vmm.js";
import { launchDetached } from "../../system/launch.js";
import type { PeerCred } from "../../system/peercred.js";
import { CommandError } from "../../system/runner.js";
import type { VmSpec } from "../../vmm/driver.js";
import { fcRequest, fcSetPaused, waitForApi } from "../../vmm/firecracker/api-client.js";
import { buildFirecrackerArgv, buildJailerArgv } from "../../vmm/firecracker/argv.js";
import { buildBootSteps, buildRestoreSteps, directPaths, FC_SNAPSHOT_NAMES, type FcPaths } from "../../vmm/firecracker/boot-steps.js";
import { jailLayout, planJail } from "../../vmm/firecracker/jail.js";
import { findVmmPid } from "../../vmm/identity.js";
import { buildKvmProbeArgv, buildQemuArgv, kvmProbeVerdict, QEMU_STATE_FD } from "../../vmm/qemu/argv.js";
import { waitIncomingLoaded } from "../../vmm/qemu/migrate.js";
import { qmpCtrlAltDel, qmpSetPaused } from "../../vmm/qemu/qmp.js";
import type { HelperEnv } from "../env.js";
import type { TrustedExecutable } from "../fs/trust.js";
import { ChildFds } from "../fs/child-fds.js";
import { named, openEntry } from "../fs/beneath.js";
import { relativeTo, type ManagedRoot } from "../fs/managed-root.js";
import { makeAgentFifos } from "../launch/agent-fifos.js";
import { removeJailTree, stageJail, type JailEntry } from "../launch/jail-stage.js";
import { openSnapshotForRestore, vmmLogTail } from "../launch/restore-files.js";
import { boundSocket, LaunchFiles, socketBound, type Held, type VmmSocket } from "../launch/spec-files.js";
import * as v from "../validate.js";

/** How long a freshly spawned VMM gets to create its control socket. */
const SOCKET_WAIT_MS = 10_000;
/** How long a restoring VMM gets to load its saved state (0.1 s for 92 MB here). */
const RESTORE_WAIT_MS = 60_000;
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
  console_log: string;
  vmm_log: string;
  restore?: { state_path: string; memory_path: string } | undefined;
}

/**
 * The string fields of a launch, validated (paths are only string-checked here: LaunchFiles opens
 * them). The pidfile and control socket are the helper's own, in the VM's run directory.
 */
function validateCommon(env: HelperEnv, p: CommonParams, controlLeaf: string, accel: "kvm" | "tcg"): VmSpec {
  const vmId = v.vmId("vm_id", p.vm_id);
  const stateRoot = env.roots.state;
  for (const [field, path, root] of [
    ["kernel_path", p.kernel_path, stateRoot],
    ["initrd_path", p.initrd_path, stateRoot],
    ["root_disk", p.root_disk.startsWith("/dev/") ? undefined : p.root_disk, stateRoot],
    ["work_disk", p.work_disk.startsWith("/dev/") ? undefined : p.work_disk, stateRoot],
    ["console_log", p.console_log, stateRoot],
    ["vmm_log", p.vmm_log, stateRoot],
    ["restore.state_path", p.restore?.state_path, stateRoot],
    ["restore.memory_path", p.restore?.memory_path, stateRoot],
  ] as const) {
    if (path !== undefined) relativeTo(field, path, root);
  }
  return {
    vmId,
    name: vmId,
    vcpus: v.intInRange("vcpus", p.vcpus, 1, 32),
    memoryMib: v.intInRange("memory_mib", p.memory_mib, 128, 65536),
    kernelPath: p.kernel_path,
    initrdPath: p.initrd_path,
    cmdline: v.kernelCmdline("cmdline", p.cmdline),
    rootDisk: p.root_disk,
    workDisk: p.work_disk,
    tap: v.tapName("tap_name", p.tap_name),
    mac: v.macAddress("mac", p.mac),
    controlSocket: env.vmmRunDirs.path(vmId, controlLeaf),
    pidFile: env.vmmRunDirs.path(vmId, HELPER_VM_LEAVES.pidFile),
    consoleLog: p.console_log,
    vmmLog: p.vmm_log,
    accel,
    restoreFrom: p.restore === undefined ? undefined : { state: p.restore.state_path, memory: p.restore.memory_path },
  };
}

/**
 * A running VMM of THIS VM makes launching again a conflict (two VMMs on one disk). Read
 * asynchronously: a scan of every process is the largest piece of a launch, and the helper's event
 * loop must stay free to answer other requests (priv.ping) meanwhile.
 */
async function refuseIfRunning(vmId: string): Promise<void> {
  const pid = await findVmmPid(vmId);
  if (pid !== null) throw new RpcError("conflict", `VM ${vmId} already has a running VMM (pid ${pid}); stop it first`);
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

/** Kernel, initrd and disks of a spec, opened and checked. */
interface SpecHeld {
  readonly kernel: Held;
  readonly initrd: Held | undefined;
  readonly rootDisk: Held;
  readonly workDisk: Held;
}

function openSpec(spec: VmSpec, files: LaunchFiles): SpecHeld {
  return {
    kernel: files.image("kernel_path", spec.kernelPath),
    initrd: spec.initrdPath === undefined ? undefined : files.image("initrd_path", spec.initrdPath),
    rootDisk: files.disk("root_disk", spec.rootDisk),
    workDisk: files.disk("work_disk", spec.workDisk),
  };
}

/** The spec's files as the child sees them: /proc/self/fd paths of the descriptors handed to it. */
function childPaths(held: SpecHeld, fds: ChildFds): Pick<VmSpec, "kernelPath" | "initrdPath" | "rootDisk" | "workDisk"> {
  return {
    kernelPath: fds.add(held.kernel.fd),
    initrdPath: held.initrd === undefined ? undefined : fds.add(held.initrd.fd),
    rootDisk: fds.add(held.rootDisk.fd),
    workDisk: fds.add(held.workDisk.fd),
  };
}

function heldFor(source: ReadonlyMap<string, Held>, path: string): Held {
  const h = source.get(path);
  if (h === undefined) throw new Error(`jail plan names ${path}, which was not opened`);
  return h;
}

function failure(what: string, e: unknown): RpcError {
  return new RpcError("operation_failed", `${what}: ${e instanceof Error ? e.message : String(e)}`);
}

export function vmmMethods(env: HelperEnv): Registration<PeerCred>[] {
  const runAs = { uid: env.ownerUid, gid: env.ownerGid };
  const vmmCfg = env.config.vmm;
  const qemuBin = (): TrustedExecutable => {
    if (env.binaries.qemu === undefined) throw new RpcError("operation_failed", `${vmmCfg.qemu_bin} was not found when the helper started`);
    return env.binaries.qemu;
  };

  /** Undo a failed launch: kill what was started (through its pidfd); report every failure. */
  const abortLaunch = async (pid: number | undefined, vmId: string): Promise<void> => {
    if (pid === undefined || !env.vmms.launchedAlive(pid)) return;
    try {
      await env.vmms.kill("pid", pid, vmId, KILL_WAIT_MS);
    } catch (e) {
      throw new AggregateError([e], `cleanup after failed launch of ${vmId} failed`);
    }
  };

  return [
    implement(privLaunchQemu, async (p, ctx) => {
      const spec = validateCommon(env, p, HELPER_VM_LEAVES.qmpSocket, p.accel);
      try {
        buildQemuArgv(qemuBin().path, spec, runAs);
      } catch (e) {
        // A comma in a path would start a new qemu sub-option: a request problem, not an internal one.
        throw new RpcError("bad_params", e instanceof Error ? e.message : String(e));
      }
      await refuseIfRunning(spec.vmId);
      const log = env.logger.child({ op_id: ctx.opId, vm_id: spec.vmId });
      // qemu opens files as root (before -runas): hand it descriptors we opened and verified, never paths.
      const files = new LaunchFiles(env);
      const fds = new ChildFds();
      let pid: number | undefined;
      let argv: string[];
      try {
        const held = openSpec(spec, files);
        if (p.restore !== undefined) {
          // First of the child's descriptors: the argv names the state as fd QEMU_STATE_FD.
          const snap = openSnapshotForRestore(env, (fd) => { files.hold(fd); }, p.restore);
          if (fds.add(snap.state.fd) !== `/proc/self/fd/${QEMU_STATE_FD}`) throw new RpcError("internal", "the saved state is not the restoring qemu's first descriptor");
        }
        const consoleLog = fds.add(files.log("console_log", spec.consoleLog));
        const vmmLog = files.log("vmm_log", spec.vmmLog);
        const run = files.runDir(spec.vmId);
        const pidFd = files.pidFile(run);
        const qmp = run.socket("qmp_socket", HELPER_VM_LEAVES.qmpSocket);
        makeAgentFifos(run.fd);
        const controlSocket = `${fds.add(qmp.dirFd)}/${qmp.leaf}`;
        argv = buildQemuArgv(qemuBin().path, { ...spec, ...childPaths(held, fds), consoleLog, controlSocket }, runAs);
        pid = launchDetached({ argv, logFd: vmmLog, pidFd, extraFds: fds.fds, execAt: qemuBin().execAt() });
        env.vmms.track(pid, spec.vmId);
        const started = pid;
        // qemu creates the QMP socket after opening kvm/tap/disks: its appearance means setup succeeded.
        const up = await waitFor(() => socketBound(qmp.n, qmp.dirFd, qmp.leaf) || !env.vmms.launchedAlive(started), SOCKET_WAIT_MS);
        // What qemu said last is why it gave up (a saved state from another machine: "Unknown ramblock", "Length mismatch").
        const why = (): string => vmmLogTail(env, spec.vmmLog);
        if (!up || !env.vmms.launchedAlive(started)) throw new Error(`qemu exited during setup${p.restore === undefined ? "" : " or while loading the saved state"}: ${why()}`);
        // -runas takes effect just before the guest starts; do not report success while the VMM is still root.
        const dropped = await waitFor(() => !env.vmms.launchedAlive(started) || env.vmms.uidsOf(started).every((u) => u === env.ownerUid), SOCKET_WAIT_MS);
        if (!env.vmms.launchedAlive(started)) throw new Error(`qemu exited ${p.restore === undefined ? "before dropping to the owner" : "while loading the saved state"}: ${why()}`);
        if (!dropped) throw new Error(`qemu did not drop to uid ${env.ownerUid}: ${why()}`);
        if (p.restore !== undefined) {
          const sockFd = boundSocket(qmp.n, qmp.dirFd, qmp.leaf, 0);
          if (sockFd === undefined) throw new Error(`qemu's QMP socket is gone; see ${spec.vmmLog}`);
          files.hold(sockFd);
          const loaded = await waitIncomingLoaded(`/proc/self/fd/${sockFd}`, () => env.vmms.launchedAlive(started), why, RESTORE_WAIT_MS);
          if (loaded !== "paused") throw new Error(`qemu is ${loaded} after loading the saved state, not paused; see ${spec.vmmLog}`);
        }
      } catch (e) {
        await abortLaunch(pid, spec.vmId);
        files.discard();
        throw e instanceof RpcError ? e : failure(`launching qemu for ${spec.vmId}`, e);
      } finally {
        files.close();
      }
      log.info(p.restore === undefined ? "qemu launched" : "qemu launched from a saved state (paused)", { pid, accel: spec.accel });
      return { pid, argv, pid_file: spec.pidFile, control_socket: spec.controlSocket };
    }),

    implement(privLaunchFirecracker, async (p, ctx) => {
      const base = validateCommon(env, p, HELPER_VM_LEAVES.apiSocket, "kvm");
      const spec: VmSpec = {
        ...base,
        metricsPath: p.metrics_path,
        vsock: p.vsock_cid === undefined ? undefined : { cid: v.intInRange("vsock_cid", p.vsock_cid, 3, 0xfffffffe), udsPath: env.vmmRunDirs.path(base.vmId, HELPER_VM_LEAVES.vsockSocket) },
      };
      await refuseIfRunning(spec.vmId);
      const jailerBin = vmmCfg.jailer === "never" ? undefined : env.binaries.jailer;
      if (vmmCfg.jailer === "always" && jailerBin === undefined) throw new RpcError("operation_failed", `vmm.jailer = "always" but ${vmmCfg.jailer_bin} was not found; install firecracker's jailer or set vmm.jailer`);
      // Opened at start whenever the jailer binary was found (main.ts); never the owner's state dir.
      const jailRoot = env.roots.jail;
      if (jailerBin !== undefined && jailRoot === undefined) throw new RpcError("internal", "the jailer is configured but vmm.jail_dir was not opened at start");
      const firecrackerBin = env.binaries.firecracker;
      if (firecrackerBin === undefined) throw new RpcError("operation_failed", `${vmmCfg.firecracker_bin} was not found when the helper started`);
      const log = env.logger.child({ op_id: ctx.opId, vm_id: spec.vmId });
      const files = new LaunchFiles(env);
      const fds = new ChildFds();
      const done: string[] = [];
      let pid: number | undefined;
      let argv: readonly string[];
      /** The jail dir this launch staged a jail in, removed again when the launch fails (it holds links to the disks). */
      let staged: ManagedRoot | undefined;
      try {
        // A previous jail holds second links to this VM's disks, which the disks' one-link rule would refuse.
        if (jailRoot !== undefined && jailerBin !== undefined) removeJailTree(jailRoot, basename(firecrackerBin.path), spec.vmId);
        const held = openSpec(spec, files);
        const snap = p.restore === undefined ? undefined : openSnapshotForRestore(env, (fd) => { files.hold(fd); }, p.restore);
        /** Where Firecracker reads the snapshot from: in-jail names, or descriptors after every one a boot hands over. */
        let snapPaths: { state: string; memory: string } | undefined;
        const run = files.runDir(spec.vmId);
        const pidFd = files.pidFile(run);
        let paths: FcPaths;
        /** Where the API socket will be: a verified directory and the name firecracker binds in it. */
        let api: VmmSocket;
        // Firecracker writes the guest serial console to stdout: that is the console log.
        const consoleLog = files.log("console_log", spec.consoleLog);
        if (jailerBin !== undefined && jailRoot !== undefined) {
          const layout = jailLayout(jailRoot.path, firecrackerBin.path, spec.vmId);
          const plan = planJail(spec, layout, (f) => f.startsWith("/dev/"));
          const source = new Map<string, Held>([[spec.kernelPath, held.kernel], [spec.rootDisk, held.rootDisk], [spec.workDisk, held.workDisk]]);
          if (spec.initrdPath !== undefined && held.initrd !== undefined) source.set(spec.initrdPath, held.initrd);
          const entries: JailEntry[] = plan.ops.flatMap((op) => (op.op === "mkdir" ? [] : [{ name: basename(op.to), source: heldFor(source, op.from) }]));
          if (snap !== undefined) {
            entries.push({ name: FC_SNAPSHOT_NAMES.state, source: snap.state }, { name: FC_SNAPSHOT_NAMES.memory, source: snap.memory });
            snapPaths = { state: `/${FC_SNAPSHOT_NAMES.state}`, memory: `/${FC_SNAPSHOT_NAMES.memory}` };
          }
          staged = jailRoot;
          stageJail(jailRoot, basename(firecrackerBin.path), spec.vmId, entries, runAs);
          // The jailer copies --exec-file into the jail by name, as root: a real path every directory of which is root's alone.
          argv = buildJailerArgv({ jailerBin: jailerBin.path, firecrackerBin: firecrackerBin.path, vmId: spec.vmId, uid: env.ownerUid, gid: env.ownerGid, chrootBaseDir: layout.chrootBaseDir, apiSocketInJail: layout.apiSocketInJail });
          paths = plan.paths;
          api = files.socket("api_socket", layout.apiSocketHost, jailRoot);
        } else {
          // No jailer: firecracker keeps root, so only the helper ever talks to its API (see rpc/priv/vmm.ts),
          // and it is named descriptors we opened and verified instead of paths.
          api = run.socket("api_socket", HELPER_VM_LEAVES.apiSocket);
          const vsock = spec.vsock === undefined ? undefined : run.socket("vsock", HELPER_VM_LEAVES.vsockSocket);
          const metrics = spec.metricsPath === undefined ? undefined : fds.add(files.log("metrics_path", spec.metricsPath));
          paths = {
            ...directPaths(spec),
            ...(({ kernelPath, initrdPath, rootDisk, workDisk }) => ({ kernel: kernelPath, initrd: initrdPath, rootDisk, workDisk }))(childPaths(held, fds)),
            logPath: fds.add(files.log("vmm_log", spec.vmmLog)),
            metricsPath: metrics,
            vsockUds: vsock === undefined ? undefined : `${fds.add(vsock.dirFd)}/${vsock.leaf}`,
          };
          argv = buildFirecrackerArgv(firecrackerBin.path, { apiSocket: `${fds.add(api.dirFd)}/${api.leaf}`, vmId: spec.vmId });
          // After all of a boot's descriptors: the snapshot names the disks by the numbers they had at boot.
          if (snap !== undefined) snapPaths = { state: fds.add(snap.state.fd), memory: fds.add(snap.memory.fd) };
        }
        pid = launchDetached({ argv, logFd: consoleLog, pidFd, extraFds: fds.fds, execAt: (jailerBin ?? firecrackerBin).execAt() });
        env.vmms.track(pid, spec.vmId);
        const started = pid;
        let sockFd: number | undefined;
        const binder = jailerBin !== undefined ? env.ownerUid : 0;
        await waitFor(() => {
          sockFd = boundSocket(api.n, api.dirFd, api.leaf, binder);
          return sockFd !== undefined || !env.vmms.launchedAlive(started);
        }, SOCKET_WAIT_MS);
        if (sockFd === undefined) throw new Error(`firecracker exited, or never bound its API socket; see ${spec.consoleLog}`);
        files.hold(sockFd);
        const apiSocket = `/proc/self/fd/${sockFd}`;
        await waitForApi(apiSocket, SOCKET_WAIT_MS, () => env.vmms.launchedAlive(started));
        for (const step of snapPaths === undefined ? buildBootSteps(spec, paths) : buildRestoreSteps(spec, paths, snapPaths)) {
          try {
            await fcRequest(apiSocket, step.method, step.path, step.body);
          } catch (e) {
            throw new Error(`boot step ${step.name} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
          }
          done.push(step.name);
        }
      } catch (e) {
        await abortLaunch(pid, spec.vmId);
        files.discard();
        if (staged !== undefined) {
          try {
            removeJailTree(staged, basename(firecrackerBin.path), spec.vmId);
          } catch {
            // cleanup_vmm and the next launch of this VM remove it again
          }
        }
        throw e instanceof RpcError ? e : failure(`launching firecracker for ${spec.vmId}`, e);
      } finally {
        files.close();
      }
      log.info(p.restore === undefined ? "firecracker launched" : "firecracker launched from a snapshot (paused)", { pid, jailed: jailerBin !== undefined, steps: done });
      const apiSocket = staged !== undefined ? jailLayout(staged.path, firecrackerBin.path, spec.vmId).apiSocketHost : spec.controlSocket;
      return { pid, argv: [...argv], jailed: jailerBin !== undefined, steps: done, pid_file: spec.pidFile, control_socket: apiSocket };
    }),

    implement(privProbeQemuKvm, async (p) => {
      const timeoutMs = v.intInRange("timeout_ms", p.timeout_ms, 1000, 60_000);
      const files = new LaunchFiles(env);
      const started = Date.now();
      try {
        const kernel = files.image("kernel_path", p.kernel_path);
        // qemu gets the verified kernel as fd 3; it drops with -runas.
        const argv = buildKvmProbeArgv(qemuBin().path, "/proc/self/fd/3", runAs);
        const { stdout } = await env.runner.run(argv, { timeoutMs, extraFds: [kernel.fd], execAt: qemuBin().execAt() });
        return kvmProbeVerdict(stdout.toString("utf8"), Date.now() - started);
      } catch (e) {
        if (e instanceof RpcError) throw e;
        // A timeout (SIGKILL) or qemu refusing -accel kvm: not usable, say why.
        const out = e instanceof CommandError ? `${e.stdout}\n${e.stderr.trim() === "" ? e.message : e.stderr}` : String(e);
        return { ...kvmProbeVerdict(out, Date.now() - started), ok: false };
      } finally {
        files.close();
      }
    }),

    implement(privVmmSetPaused, async (p) => ({
      paused: await overControlSocket(env, p, `${p.paused ? "pausing" : "resuming"} ${p.vm_id}`, (sock) => (p.kind === "qemu" ? qmpSetPaused(sock, p.paused) : fcSetPaused(sock, p.paused))),
    })),

    implement(privVmmShutdown, async (p) => {
      await overControlSocket(env, p, `asking ${p.vm_id} to shut down`, async (sock) => {
        if (p.kind === "qemu") await qmpCtrlAltDel(sock);
        else await fcRequest(sock, "PUT", "/actions", { action_type: "SendCtrlAltDel" });
      });
      return { sent: true };
    }),

    implement(privSignalProcess, (p) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      const signal = SIGNAL_ALLOW_LIST.find((s) => s === p.signal);
      if (signal === undefined) throw new RpcError("bad_params", `signal: ${JSON.stringify(p.signal)} is not one of ${SIGNAL_ALLOW_LIST.join(", ")}`);
      env.vmms.signal("pid", p.pid, vmId, signal);
      return { sent: true };
    }),

    implement(privKillProcess, async (p) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      return { exited: await env.vmms.kill("pid", p.pid, vmId, KILL_WAIT_MS, p.launched_only === true) };
    }),

    implement(privCleanupVmm, async (p) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      await refuseIfRunning(vmId);
      const exec = env.binaries.firecracker?.path ?? vmmCfg.firecracker_bin;
      // Both are attempted: a jail left by a failed removal of the run dir must not outlive the VM.
      const jailRoot = env.roots.jail;
      const removals = [() => env.vmmRunDirs.remove(vmId), ...(jailRoot === undefined ? [] : [() => removeJailTree(jailRoot, basename(exec), vmId)])];
      const results = removals.map((remove) => {
        try {
          return { removed: remove() };
        } catch (e) {
          return { error: e };
        }
      });
      const errors = results.flatMap((r) => ("error" in r ? [r.error] : []));
      if (errors.length > 0) throw failure(`cleaning up after the VMM of ${vmId}`, new AggregateError(errors, errors.map((e) => (e instanceof Error ? e.message : String(e))).join("; ")));
      return { removed: results.some((r) => "removed" in r && r.removed) };
    }),
  ];
}

/**
 * Talk to `vm_id`'s VMM over its control socket. The pid must be this VM's VMM and one the helper
 * may signal; the socket is then reached by descriptor, and connect() through the O_PATH
 * descriptor's magic link reaches exactly the socket inode checked.
 */
export async function overControlSocket<T>(env: HelperEnv, p: { readonly pid: number; readonly vm_id: string; readonly kind: "qemu" | "firecracker" }, what: string, talk: (sock: string) => Promise<T>): Promise<T> {
  const vmId = v.vmId("vm_id", p.vm_id);
  env.vmms.signal("pid", p.pid, vmId, 0);
  const entry = openControlSocket(env, vmId, p.kind);
  try {
    return await talk(`/proc/self/fd/${entry.fd}`);
  } catch (e) {
    throw e instanceof RpcError ? e : failure(what, e);
  } finally {
    closeSync(entry.fd);
  }
}

/**
 * The control socket of `vmId`'s VMM as an O_PATH descriptor of a socket: the helper's own, in the
 * VM's run directory (qemu's QMP, an unjailed Firecracker's API), else a jailed Firecracker's, in its jail.
 */
function openControlSocket(env: HelperEnv, vmId: string, kind: "qemu" | "firecracker"): { fd: number } {
  return openVmmSocket(env, vmId, "control_socket", kind === "qemu" ? HELPER_VM_LEAVES.qmpSocket : HELPER_VM_LEAVES.apiSocket, kind === "firecracker" ? "api.sock" : undefined);
}

/**
 * A socket a VMM of `vmId` bound, as an O_PATH descriptor checked to be a socket: `runLeaf` in the
 * VM's run directory, else (`jailLeaf` given, a jailed Firecracker) that name in the root of its jail.
 */
export function openVmmSocket(env: HelperEnv, vmId: string, field: string, runLeaf: string, jailLeaf: string | undefined): { fd: number } {
  let entry;
  try {
    entry = openEntry(env.vmmRunDirs.named(field, vmId, runLeaf));
  } catch (e) {
    const jailRoot = env.roots.jail;
    if (!(e instanceof RpcError && e.code === "not_found" && jailLeaf !== undefined && jailRoot !== undefined)) throw e;
    const exec = env.binaries.firecracker?.path ?? env.config.vmm.firecracker_bin;
    entry = openEntry(named(field, join(jailLayout(jailRoot.path, exec, vmId).root, jailLeaf), jailRoot));
  }
  if (!entry.stat.isSocket()) {
    closeSync(entry.fd);
    throw new RpcError("bad_params", `${field} of ${vmId} is not a socket`);
  }
  return entry;
}
