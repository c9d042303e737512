import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { state } from "../../paths/paths.js";
import { RpcError } from "../../rpc/errors.js";
import { NO_EXEC_DEFAULTS } from "../../model/exec-defaults.js";
import type { VmEgress } from "../../state/egress.js";
import { ImageRepository } from "../../state/images.js";
import { OperationRepository } from "../../state/operations.js";
import { SnapshotRepository } from "../../state/snapshots.js";
import { VmRepository } from "../../state/vms.js";
import type { Registration } from "../../rpc/dispatcher.js";
import type { PeerCred } from "../../system/peercred.js";
import type { SystemInfo } from "../../rpc/daemon/system.js";
import type { DaemonEnv } from "../env.js";
import type { InfoContributor } from "../methods/system.js";
import { ExecPool } from "../exec/pool.js";
import { execMethods } from "../methods/exec.js";
import { imageService } from "../methods/image.js";
import { operationMethods } from "../methods/operation.js";
import { snapshotMethods } from "../methods/snapshot.js";
import { egressMethods, egressPolicyFrom } from "../methods/egress.js";
import { portMethods } from "../methods/ports.js";
import { vmMethods } from "../methods/vm.js";
import { OperationTracker } from "../operations/tracker.js";
import type { VmDeps } from "./deps.js";
import { HandleStore } from "./handles.js";
import type { LifecycleEnv } from "./lifecycle-env.js";
import { VmService } from "./service.js";
import { createSshProbe } from "./ssh-probe.js";
import { ensureInstallKey, generateHostKey } from "./ssh-keys.js";

/**
 * Where the daemon's real subsystems plug into the VM lifecycle. Until a
 * subsystem is wired here its calls fail with a message naming it, so
 * `vm list/show/rm` work and `vm create` fails clearly instead of hanging.
 * Wire real subsystems by passing overrides from the registry, e.g.
 *   lifecycleMethods(env, {
 *     network: networkService(env),                         // src/daemon/network/service.ts
 *     storage: daemonStorage(env).deps,                      // src/daemon/storage/vm-storage.ts
 *     vmm: vmmDepsFromDriver(driver, choice.accel, env.layout.runtimeDir), // ./vmm-adapter.ts + src/vmm
 *     dns: { publish, unpublish },                           // src/daemon/dns
 *   })
 * Images come from the `images` table already; ssh readiness uses the real probe.
 */
function unwired(subsystem: string): never {
  throw new RpcError("operation_failed", `${subsystem} is not wired into the VM lifecycle yet (src/daemon/vm/wiring.ts)`);
}

export function daemonVmDeps(env: DaemonEnv, overrides: Partial<VmDeps> = {}): VmDeps {
  return {
    images: overrides.images ?? imageService(env),
    network: overrides.network ?? { lease: () => unwired("network"), release: () => Promise.resolve(), attach: () => unwired("network"), addNat: () => unwired("network"), removeNat: () => Promise.resolve(), detach: () => Promise.resolve(), hostView: () => Promise.resolve({ taps: [], natGuests: [], natInstalled: false }), deleteTap: () => Promise.resolve(), removeNatGuest: () => Promise.resolve(), removeAllNat: () => Promise.resolve() },
    ports: overrides.ports ?? { apply: () => Promise.resolve(), clear: () => Promise.resolve(), publish: () => unwired("ports"), published: () => Promise.resolve([]) },
    egress: overrides.egress ?? { apply: () => Promise.resolve(), clear: () => Promise.resolve(), registered: () => Promise.resolve([]) },
    storage: overrides.storage ?? { cloneRoot: () => unwired("storage"), growRoot: () => unwired("storage"), readImageFile: () => unwired("storage"), growWorkDisk: () => unwired("storage"), activateRoot: () => unwired("storage"), deactivateRoot: () => Promise.resolve(), destroyRoot: () => Promise.resolve(), createWorkDisk: () => unwired("storage"), destroyWorkDisk: () => Promise.resolve(), injectFiles: () => unwired("storage"), cloneRootFrom: () => unwired("storage"), cloneFile: () => unwired("storage"), dropSpares: () => Promise.resolve() },
    vmm: overrides.vmm ?? { kind: env.config.vmm.kind === "auto" ? "qemu" : env.config.vmm.kind, launch: () => unwired("vmm"), stop: () => Promise.resolve(), isAlive: () => Promise.resolve(false), setPaused: () => unwired("vmm"), saveState: () => unwired("vmm"), sendIdentity: () => unwired("vmm"), stateCompatibility: () => unwired("vmm"), watchExit: () => () => undefined, find: () => Promise.resolve(undefined), release: () => Promise.resolve(), listAll: () => Promise.resolve([]), killOrphan: () => unwired("vmm") },
    dns: overrides.dns ?? { publish: () => Promise.resolve(), unpublish: () => Promise.resolve() },
    ssh: overrides.ssh ?? createSshProbe({ knownHostsPath: state.knownHosts(env.layout.stateDir) }),
  };
}

export function createVmService(env: DaemonEnv, deps: VmDeps): { service: VmService; operations: OperationRepository; lifecycle: LifecycleEnv } {
  const vms = new VmRepository(env.db);
  const operations = new OperationRepository(env.db);
  // Operations cut off by a previous daemon's exit would otherwise read "running" forever.
  operations.failInterrupted("the daemon restarted while this operation was running; it was unwound at start-up (see the VM's state, or `banger vm list`: an interrupted create leaves no VM)");
  operations.pruneFinished(new Date(Date.now() - 7 * 24 * 3600 * 1000));
  const lifecycle: LifecycleEnv = {
    deps,
    vms,
    handles: new HandleStore(vms, env.layout.stateDir),
    logger: env.logger,
    stateDir: env.layout.stateDir,
    knownHostsPath: state.knownHosts(env.layout.stateDir),
    sshReadyTimeoutMs: env.config.vmm.boot_timeout_s * 1000,
    stopTimeoutMs: env.config.vmm.stop_timeout_s * 1000,
    // A guest that panics is reported within 2 s instead of at the ssh timeout; each check reads
    // /proc/PID/stat of a busy VMM, so booting VMs are not checked more often than that.
    aliveCheckMs: 2_000,
    bootId: hostBootId(),
    installKey: () => ensureInstallKey(env.layout.stateDir),
    hostKey: (flavor) => generateHostKey(flavor),
  };
  const service = new VmService({
    env: lifecycle,
    db: env.db,
    tracker: new OperationTracker(operations, env.logger),
    snapshots: new SnapshotRepository(env.db),
    defaults: { image: env.config.defaults.image, vcpus: env.config.defaults.vcpus, memoryMib: env.config.defaults.memory_mib, diskGib: env.config.defaults.disk_gib, egress: configuredEgress(env) },
  });
  return { service, operations, lifecycle };
}

/** network.egress and network.isolate (the config schema already refused a policy that does not parse). */
function configuredEgress(env: DaemonEnv): VmEgress {
  return { policy: egressPolicyFrom("network.egress", env.config.network.egress), isolate: env.config.network.isolate };
}

function hostBootId(): string {
  return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
}

/** What the daemon's shutdown needs from the lifecycle. */
export interface LifecycleShutdown {
  /** Settles when start-up's reconcile (adopting running VMs, re-publishing their names) is over, failed or not. */
  readonly reconciled: Promise<void>;
  /** The daemon stops taking requests: answer long polls now so the server can close. */
  stopServing(): void;
  /** Unwind what is in flight, then wait for it. */
  shutdown(): Promise<void>;
}

/** The vm.* and operation.* methods, built on the deps above: one line in the daemon registry. */
export function lifecycleMethods(env: DaemonEnv, overrides: Partial<VmDeps> = {}): Registration<PeerCred>[] & LifecycleShutdown & { readonly startupInfo: InfoContributor } {
  const deps = daemonVmDeps(env, overrides);
  const { service, operations } = createVmService(env, deps);
  // Re-publish DNS for surviving VMs, settle states left by a previous daemon and clear orphans;
  // failures are logged and shown by `banger system status`, not fatal.
  let startup: NonNullable<SystemInfo["startup"]> = { done: false, adopted: [], stopped: [], interrupted: [], failed: [], orphans: [], unchecked: [] };
  const reconciled = service.reconcile("op-startup0").then(
    (r) => {
      startup = { done: true, ...r };
      env.logger.info("vm reconcile", { op_id: "op-startup0", adopted: r.adopted, stopped: r.stopped, interrupted: r.interrupted, failed: r.failed, orphans: r.orphans.length, unchecked: r.unchecked });
    },
    (e: unknown) => {
      const error = e instanceof Error ? e.message : String(e);
      startup = { ...startup, done: true, error };
      env.logger.error("vm reconcile failed", { op_id: "op-startup0", error });
    },
  );
  const closing = new AbortController();
  const pool = new ExecPool({ logger: env.logger, privateKey: async () => { await ensureInstallKey(env.layout.stateDir); return readFile(state.sshKey(env.layout.stateDir)); } });
  const images = new ImageRepository(env.db);
  const methodsEnv = { service, reconciled, stateDir: env.layout.stateDir, runner: env.runner, db: env.db, defaultEgress: configuredEgress(env), released: (vmId: string, opId: string) => { pool.forget(vmId, opId); } };
  const methods = [...vmMethods(methodsEnv), ...execMethods({ service, pool, logger: env.logger, reconciled, execDefaults: (image) => images.get(image)?.execDefaults ?? NO_EXEC_DEFAULTS }), ...snapshotMethods(methodsEnv), ...portMethods({ service, ports: deps.ports, db: env.db, reconciled }), ...egressMethods({ service, egress: deps.egress, db: env.db, reconciled }), ...operationMethods(operations, closing.signal)];
  // A create waiting for ssh when the daemon stops is aborted and unwound (tap, NAT, disks, lease)
  // rather than left half-made for the next daemon to mark as failed. Running VMs are not touched.
  return Object.assign(methods, {
    startupInfo: () => ({ startup }),
    reconciled,
    stopServing() {
      closing.abort();
    },
    async shutdown() {
      closing.abort();
      pool.closeAll("op-shutdown0");
      service.abortAll();
      await service.idle();
    },
  });
}
