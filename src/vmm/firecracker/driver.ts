import type { HelperClient } from "../../daemon/helper-client.js";
import { launchFields } from "../launch-fields.js";
import { privLaunchFirecracker } from "../../rpc/priv/vmm.js";
import type { Logger } from "../../system/log.js";
import * as control from "../control.js";
import type { LaunchPlan, SnapshotFiles, VmmDriver, VmmHandle, VmSpec } from "../driver.js";
import { buildFirecrackerArgv, buildJailerArgv } from "./argv.js";
import { buildBootSteps, buildRestoreSteps, directPaths, FC_SNAPSHOT_NAMES, type FcPaths } from "./boot-steps.js";
import { jailLayout, planJail } from "./jail.js";

/** A boot's API calls, or a restore's (snapshot: where Firecracker finds the files). */
function steps(spec: VmSpec, paths: FcPaths, snapshot: SnapshotFiles | undefined): LaunchPlan["apiSteps"] {
  return snapshot === undefined ? buildBootSteps(spec, paths) : buildRestoreSteps(spec, paths, snapshot);
}

export interface FirecrackerDriverDeps {
  readonly helper: HelperClient;
  readonly logger: Logger;
  readonly firecrackerBin: string;
  /** Set when the helper will use the jailer (select.ts decides with the same config). */
  readonly jailer?: { readonly jailerBin: string; readonly jailDir: string; readonly uid: number; readonly gid: number } | undefined;
  readonly procRoot?: string;
}

/**
 * Firecracker: the root helper spawns it (under the jailer when available)
 * AND runs the boot steps over its API, because an unjailed firecracker is
 * root and must not be steered by the owner daemon. The daemon keeps the
 * handle; graceful stop is SendCtrlAltDel through priv.vmm_shutdown.
 */
export function firecrackerDriver(deps: FirecrackerDriverDeps): VmmDriver {
  const c: control.ControlDeps = { helper: deps.helper, logger: deps.logger, ...(deps.procRoot === undefined ? {} : { procRoot: deps.procRoot }) };
  return {
    kind: "firecracker",
    buildLaunch(spec: VmSpec): LaunchPlan {
      const j = deps.jailer;
      if (j === undefined) {
        return { kind: "firecracker", argv: buildFirecrackerArgv(deps.firecrackerBin, { apiSocket: spec.controlSocket, vmId: spec.vmId }), apiSteps: steps(spec, directPaths(spec), spec.restoreFrom) };
      }
      const layout = jailLayout(j.jailDir, deps.firecrackerBin, spec.vmId);
      // Planning only: device-ness is decided by the helper at launch; /dev paths are the dm devices.
      const plan = planJail(spec, layout, (p) => p.startsWith("/dev/"));
      return {
        kind: "firecracker",
        argv: buildJailerArgv({ jailerBin: j.jailerBin, firecrackerBin: deps.firecrackerBin, vmId: spec.vmId, uid: j.uid, gid: j.gid, chrootBaseDir: layout.chrootBaseDir, apiSocketInJail: layout.apiSocketInJail }),
        apiSteps: steps(spec, plan.paths, spec.restoreFrom === undefined ? undefined : { state: `/${FC_SNAPSHOT_NAMES.state}`, memory: `/${FC_SNAPSHOT_NAMES.memory}` }),
      };
    },
    async launch(spec, opId): Promise<VmmHandle> {
      const res = await deps.helper.call(
        privLaunchFirecracker,
        {
          ...launchFields(spec),
          ...(spec.metricsPath === undefined ? {} : { metrics_path: spec.metricsPath }),
          ...(spec.vsock === undefined ? {} : { vsock_cid: spec.vsock.cid }),
        },
        opId,
        60_000,
      );
      return { kind: "firecracker", vmId: spec.vmId, pid: res.pid, controlSocket: res.control_socket, pidFile: res.pid_file };
    },
    stop: (handle, options, opId) => control.stop(c, handle, options, opId),
    release: (vmId, opId) => control.release(c, vmId, opId),
    isRunning: (handle) => Promise.resolve(control.isRunning(c, handle)),
    adopt: (ref) => Promise.resolve().then(() => control.adopt(c, { ...ref, kind: "firecracker" })),
    stats: (handle) => control.stats(c, handle),
    setPaused: (handle, paused, opId) => control.setPaused(c, handle, paused, opId),
    saveState: (handle, files, opId) => control.saveState(c, handle, files, opId),
    sendIdentity: (handle, identity, opId) => control.sendIdentity(c, handle, identity, opId),
  };
}
