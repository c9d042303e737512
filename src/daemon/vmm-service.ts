import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { privKillProcess, privProbeQemuKvm } from "../rpc/priv/vmm.js";
import { createPidExitWatcher } from "../system/pid-exit-watcher.js";
import type { Accel, VmmKind } from "../vmm/driver.js";
import { createVmmDriver } from "../vmm/factory.js";
import { listBangerVmms } from "../vmm/identity.js";
import { hostProbes, selectVmm, type VmmChoice } from "../vmm/select.js";
import type { DaemonEnv } from "./env.js";
import type { InfoContributor } from "./methods/system.js";
import type { VmmDeps } from "./vm/deps.js";
import { vmmDepsFromDriver, type DriverVmmDeps } from "./vm/vmm-adapter.js";

const PROBE_TIMEOUT_MS = 20_000;

export interface VmmService {
  readonly deps: VmmDeps;
  readonly info: InfoContributor;
  /** Stop watching VMMs for exit (they keep running); the daemon is going away. */
  close(): void;
}

/**
 * The VMM the daemon uses, chosen by select.ts. The driver kind is fixed at
 * start-up (firecracker needs only its binary and /dev/kvm), but whether qemu
 * can use KVM needs a probe boot of a real kernel, which exists only once an
 * image does: so the accel is settled at the first launch, by the root helper
 * booting that image's kernel, and remembered in the state dir.
 */
export async function createVmmService(env: DaemonEnv): Promise<VmmService> {
  const cacheFile = join(env.layout.stateDir, "vmm-probe.json");
  let probeKernel: string | undefined;
  const qemuKvmBoots = async (): Promise<boolean> => {
    const cached = readCache(cacheFile);
    if (cached !== undefined) return cached;
    if (probeKernel === undefined) throw new DeferProbe();
    const verdict = await env.helper.call(privProbeQemuKvm, { kernel_path: probeKernel, timeout_ms: PROBE_TIMEOUT_MS }, "op-vmmprobe0", PROBE_TIMEOUT_MS + 10_000);
    env.logger.info("qemu+kvm probe boot", { ok: verdict.ok, elapsed_ms: verdict.elapsed_ms, detail: verdict.detail });
    writeFileSync(cacheFile, JSON.stringify({ ok: verdict.ok, detail: verdict.detail, at: new Date().toISOString() }) + "\n");
    return verdict.ok;
  };

  let choice: VmmChoice | undefined;
  let pending: string | undefined;
  const settle = async (): Promise<VmmChoice | undefined> => {
    if (choice !== undefined) return choice;
    try {
      choice = await selectVmm(env.config.vmm, hostProbes(qemuKvmBoots));
      if (choice.warning !== undefined) env.logger.warn(choice.warning, { vmm: choice.kind, accel: choice.accel });
      return choice;
    } catch (e) {
      if (e instanceof DeferProbe) {
        pending = "qemu; kvm or tcg is decided by a probe boot at the first VM start";
        return undefined;
      }
      throw e;
    }
  };
  await settle();
  const kind: VmmKind = choice?.kind ?? "qemu";
  const driver = createVmmDriver(kind, { helper: env.helper, logger: env.logger, vmm: env.config.vmm, owner: { uid: env.ownerUid, gid: env.ownerGid } });
  const exits = createPidExitWatcher((e) => { env.logger.error("VMM exit watch failed", { error: e instanceof Error ? e.message : String(e) }); });
  const adapters = new Map<Accel, DriverVmmDeps>();
  const adapter = (accel: Accel): DriverVmmDeps => {
    let a = adapters.get(accel);
    if (a === undefined) {
      a = vmmDepsFromDriver(driver, accel, dirname(env.layout.helperSocket), exits);
      adapters.set(accel, a);
    }
    return a;
  };

  return {
    deps: {
      kind,
      async launch(spec, opId) {
        if (choice === undefined) {
          probeKernel = spec.image.kernelPath;
          const settled = await settle();
          if (settled === undefined) throw new Error("could not decide the VMM accelerator");
        }
        return adapter(choice?.accel ?? "tcg").launch(spec, opId);
      },
      // Stop and liveness do not depend on the accelerator.
      stop: (handle, opts, opId) => adapter(choice?.accel ?? "tcg").stop(handle, opts, opId),
      isAlive: (handle) => adapter(choice?.accel ?? "tcg").isAlive(handle),
      setPaused: (handle, paused, opId) => adapter(choice?.accel ?? "tcg").setPaused(handle, paused, opId),
      sendIdentity: (handle, identity, opId) => adapter(choice?.accel ?? "tcg").sendIdentity(handle, identity, opId),
      watchExit: (handle, onExit) => adapter(choice?.accel ?? "tcg").watchExit(handle, onExit),
      find: (vmId, vmmKind) => adapter(choice?.accel ?? "tcg").find(vmId, vmmKind),
      release: (vmId, opId) => adapter(choice?.accel ?? "tcg").release(vmId, opId),
      listAll: () => listBangerVmms(),
      async killOrphan(vmm, opId) {
        const { exited } = await env.helper.call(privKillProcess, { pid: vmm.pid, vm_id: vmm.vmId, launched_only: true }, opId);
        if (!exited) throw new Error(`VMM pid ${vmm.pid} survived SIGKILL (stuck in the kernel?); check /proc/${vmm.pid}/status`);
        await adapter(choice?.accel ?? "tcg").release(vmm.vmId, opId);
      },
    },
    close: () => { exits.close(); },
    info: () => ({ vmm: choice !== undefined ? { kind: choice.kind, accel: choice.accel, reason: choice.warning !== undefined ? `${choice.reason} (warning: ${choice.warning})` : choice.reason } : { kind, accel: "pending", reason: pending ?? "not decided yet" } }),
  };
}

class DeferProbe extends Error {}

function readCache(file: string): boolean | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as { ok?: unknown };
    return typeof v.ok === "boolean" ? v.ok : undefined;
  } catch {
    return undefined;
  }
}
