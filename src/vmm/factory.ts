import type { Config } from "../config/schema.js";
import type { HelperClient } from "../daemon/helper-client.js";
import type { Logger } from "../system/log.js";
import { resolveBinary } from "./binaries.js";
import type { VmmDriver, VmmKind } from "./driver.js";
import { firecrackerDriver } from "./firecracker/driver.js";
import { qemuDriver } from "./qemu/driver.js";

export interface DriverFactoryDeps {
  readonly helper: HelperClient;
  readonly logger: Logger;
  readonly vmm: Config["vmm"];
  /** The owner uid/gid the VMM drops to (the helper uses its own flags; this is for buildLaunch display). */
  readonly owner: { readonly uid: number; readonly gid: number };
}

/** The driver for a kind picked by select.ts, wired to the root helper. */
export function createVmmDriver(kind: VmmKind, deps: DriverFactoryDeps): VmmDriver {
  if (kind === "qemu") return qemuDriver({ helper: deps.helper, logger: deps.logger, qemuBin: deps.vmm.qemu_bin, runAs: deps.owner });
  const jailerBin = deps.vmm.jailer === "never" ? undefined : resolveBinary(deps.vmm.jailer_bin);
  return firecrackerDriver({
    helper: deps.helper,
    logger: deps.logger,
    firecrackerBin: deps.vmm.firecracker_bin,
    jailer: jailerBin === undefined ? undefined : { jailerBin, jailDir: deps.vmm.jail_dir, uid: deps.owner.uid, gid: deps.owner.gid },
  });
}
