import type { HelperClient } from "../../daemon/helper-client.js";
import { launchFields } from "../launch-fields.js";
import { privLaunchQemu } from "../../rpc/priv/vmm.js";
import type { Logger } from "../../system/log.js";
import * as control from "../control.js";
import type { LaunchPlan, VmmDriver, VmmHandle, VmSpec } from "../driver.js";
import { buildQemuArgv, type RunAs } from "./argv.js";

export interface QemuDriverDeps {
  readonly helper: HelperClient;
  readonly logger: Logger;
  readonly qemuBin: string;
  /** The owner the VMM drops to (shown in buildLaunch; the helper uses its own flags). */
  readonly runAs: RunAs;
  readonly procRoot?: string;
}

/** qemu -M microvm, launched by the root helper, controlled over QMP (through the helper). */
export function qemuDriver(deps: QemuDriverDeps): VmmDriver {
  const c: control.ControlDeps = { helper: deps.helper, logger: deps.logger, ...(deps.procRoot === undefined ? {} : { procRoot: deps.procRoot }) };
  return {
    kind: "qemu",
    buildLaunch(spec: VmSpec): LaunchPlan {
      return { kind: "qemu", argv: buildQemuArgv(deps.qemuBin, spec, deps.runAs), apiSteps: [] };
    },
    async launch(spec, opId): Promise<VmmHandle> {
      const res = await deps.helper.call(
        privLaunchQemu,
        { ...launchFields(spec), accel: spec.accel },
        opId,
        30_000,
      );
      return { kind: "qemu", vmId: spec.vmId, pid: res.pid, controlSocket: res.control_socket, pidFile: res.pid_file };
    },
    stop: (handle, options, opId) => control.stop(c, handle, options, opId),
    release: (vmId, opId) => control.release(c, vmId, opId),
    isRunning: (handle) => Promise.resolve(control.isRunning(c, handle)),
    adopt: (ref) => Promise.resolve().then(() => control.adopt(c, { ...ref, kind: "qemu" })),
    stats: (handle) => control.stats(c, handle),
    setPaused: (handle, paused, opId) => control.setPaused(c, handle, paused, opId),
    saveState: (handle, files, opId) => control.saveState(c, handle, files, opId),
    sendIdentity: (handle, identity, opId) => control.sendIdentity(c, handle, identity, opId),
  };
}
