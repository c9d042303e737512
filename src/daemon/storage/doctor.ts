import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { detectCloneStrategy, probeReflink, REFLINK_ADVICE } from "./detect.js";
import type { CloneStrategyName } from "./types.js";

export interface StorageCheck {
  readonly name: "clone";
  readonly status: "ok" | "warn";
  readonly detail: string;
  readonly fix?: string;
  readonly required: false;
}

/**
 * `banger doctor`'s storage line, computed without the daemon: which clone
 * strategy this state dir gets and how to make it O(1). The probe runs in
 * the state dir, or (before the first run) in its nearest existing parent,
 * which is on the same filesystem unless a mount point intervenes. dm-snapshot
 * needs the root helper, so doctor only says whether device-mapper exists;
 * `banger system status` shows the daemon's actual choice.
 */
export async function storageDoctorCheck(stateDir: string, configured: "auto" | CloneStrategyName): Promise<StorageCheck> {
  let dir = stateDir;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const probe = (): Promise<string | undefined> => (dir === stateDir ? probeReflink(stateDir) : probeReflink(dir, join(dir, ".banger-clone-probe")));
  const choice = await detectCloneStrategy({ stateDir, configured, opId: "op-doctor0", probeReflink: probe });
  const o1 = choice.strategy !== "copy";
  const dmNote = deviceMapperRegistered() ? " (device-mapper present: the daemon may use dm-snapshot)" : "";
  return {
    name: "clone",
    status: o1 ? "ok" : "warn",
    detail: `${choice.strategy}: ${choice.reason}${choice.strategy === "copy" ? dmNote : ""}`,
    ...(o1 ? {} : { fix: choice.advice !== "" ? choice.advice : REFLINK_ADVICE }),
    required: false,
  };
}

/**
 * The dm driver registers itself in /proc/misc (readable without root). A
 * /dev/mapper/control node alone proves nothing: udev or a package's
 * postinst can make one on a kernel with no dm driver behind it.
 */
function deviceMapperRegistered(): boolean {
  try {
    return /^\s*\d+ device-mapper$/m.test(readFileSync("/proc/misc", "utf8"));
  } catch {
    return false;
  }
}
