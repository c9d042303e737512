import { constants, existsSync } from "node:fs";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { state } from "../../paths/paths.js";
import { privStorageCaps } from "../../rpc/priv/disks.js";
import type { HelperClient } from "../helper-client.js";
import { copyStrategy } from "./copy.js";
import { dmSnapshotStrategy } from "./dm-snapshot.js";
import { reflinkStrategy } from "./reflink.js";
import type { Copier } from "./spare-copies.js";
import type { CloneStrategy, CloneStrategyName } from "./types.js";

export interface StrategyChoice {
  readonly strategy: CloneStrategyName;
  /** Why this one, for `system status` / `doctor`. */
  readonly reason: string;
  /** How to get an O(1) strategy when the chosen one is not; "" when nothing to do. */
  readonly advice: string;
}

export interface DetectDeps {
  readonly stateDir: string;
  readonly configured: "auto" | CloneStrategyName;
  /** Absent when the daemon has no root helper (dm-snapshot is then impossible). */
  readonly helper?: HelperClient | undefined;
  readonly opId: string;
  /** Overridable for tests. */
  readonly probeReflink?: (stateDir: string) => Promise<string | undefined>;
  readonly hasFile?: (p: string) => boolean;
  readonly which?: (cmd: string) => boolean;
}

export const REFLINK_ADVICE = "put the state dir on xfs or btrfs for O(1) clones";

/**
 * Tries a real FICLONE of a scratch file in the state dir (the only reliable
 * test: reflink support depends on the filesystem AND how it was made, e.g.
 * xfs without reflink=1). Returns undefined on success, else why it failed.
 */
export async function probeReflink(stateDir: string, probePath = state.cloneProbe(stateDir)): Promise<string | undefined> {
  const src = `${probePath}-${process.pid}`;
  const dst = `${src}.clone`;
  try {
    await mkdir(dirname(src), { recursive: true, mode: 0o700 });
    await writeFile(src, "banger reflink probe\n");
    await copyFile(src, dst, constants.COPYFILE_FICLONE_FORCE);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  } finally {
    await rm(src, { force: true });
    await rm(dst, { force: true });
  }
}

function whichSync(cmd: string): boolean {
  const dirs = (process.env["PATH"] ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  return dirs.some((d) => d !== "" && existsSync(`${d}/${cmd}`));
}

/**
 * Picks the clone strategy for a state dir. Order for "auto": reflink (O(1),
 * no root, survives host reboots untouched), then dm-snapshot (O(1), needs
 * the root helper and device-mapper, devices re-attached after reboots),
 * then sparse copy (always works, O(data)). A configured strategy is used as
 * is; the reason says so, and says if the probe expects it to fail.
 */
export async function detectCloneStrategy(deps: DetectDeps): Promise<StrategyChoice> {
  const probe = deps.probeReflink ?? probeReflink;
  const hasFile = deps.hasFile ?? existsSync;
  const which = deps.which ?? whichSync;

  const reflinkProblem = await probe(deps.stateDir);
  const dm = await dmCapability(deps, hasFile, which);

  if (deps.configured !== "auto") {
    const problem = deps.configured === "reflink" ? (reflinkProblem === undefined ? undefined : `FICLONE probe failed (${reflinkProblem})`) : deps.configured === "dm-snapshot" ? (dm.ok ? undefined : dm.reason) : undefined;
    return {
      strategy: deps.configured,
      reason: `set by storage.clone_strategy in the config${problem === undefined ? "" : `, but it will fail here: ${problem}`}`,
      advice: deps.configured === "copy" ? `copy costs time proportional to the image; ${REFLINK_ADVICE}, or set storage.clone_strategy = "auto"` : "",
    };
  }
  if (reflinkProblem === undefined) return { strategy: "reflink", reason: `FICLONE works in ${deps.stateDir}`, advice: "" };
  if (dm.ok) return { strategy: "dm-snapshot", reason: `no reflink in ${deps.stateDir} (${reflinkProblem}); ${dm.reason}`, advice: "" };
  return {
    strategy: "copy",
    reason: `no reflink in ${deps.stateDir} (${reflinkProblem}) and no dm-snapshot (${dm.reason}); falling back to sparse copy`,
    advice: REFLINK_ADVICE,
  };
}

async function dmCapability(deps: DetectDeps, hasFile: (p: string) => boolean, which: (cmd: string) => boolean): Promise<{ ok: boolean; reason: string }> {
  if (!hasFile("/dev/mapper/control")) return { ok: false, reason: "/dev/mapper/control is missing" };
  if (!which("dmsetup")) return { ok: false, reason: "dmsetup is not installed" };
  if (deps.helper === undefined) return { ok: false, reason: "no root helper" };
  try {
    const caps = await deps.helper.call(privStorageCaps, {}, deps.opId, 10_000);
    return { ok: caps.dm_snapshot, reason: caps.reason };
  } catch (e) {
    return { ok: false, reason: `root helper did not answer: ${(e as Error).message}` };
  }
}

export function makeStrategy(name: CloneStrategyName, deps: { stateDir: string; helper?: HelperClient | undefined; copy?: Copier | undefined }): CloneStrategy {
  switch (name) {
    case "reflink":
      return reflinkStrategy(deps.stateDir);
    case "copy":
      return copyStrategy(deps.stateDir, deps.copy);
    case "dm-snapshot":
      if (deps.helper === undefined) throw new Error("dm-snapshot needs the root helper (bangerd-root); run `banger system install`");
      return dmSnapshotStrategy(deps.helper, deps.stateDir);
  }
}
