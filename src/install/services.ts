import { resolveBinary } from "../vmm/binaries.js";
import type { Runner } from "../system/runner.js";
import { detachedServices } from "./detached-services.js";
import type { InstallLayout } from "./layout.js";
import type { InstallMetadata } from "./metadata.js";
import { SERVICE_PATH } from "./service-command.js";
import type { ServiceManager } from "./service-manager.js";
import { systemdServices } from "./systemd-services.js";

/** The manager an install's mode calls for. */
export function servicesFor(meta: InstallMetadata, layout: InstallLayout, runner: Runner): ServiceManager {
  if (meta.mode === "systemd") return systemdServices(runner);
  return detachedServices(meta, layout, { setpriv: setprivPath("the detached mode starts bangerd through it") });
}

/** util-linux setpriv in root's search path, which drops root to the owner; `why` says what needs it. */
export function setprivPath(why: string): string {
  const setpriv = resolveBinary("setpriv", SERVICE_PATH);
  if (setpriv === undefined) throw new Error(`setpriv (util-linux) is not installed; ${why}: apt-get install util-linux`);
  return setpriv;
}
