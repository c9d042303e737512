import { spawnSync } from "node:child_process";
import { which } from "../../src/system/which.js";

export { which };

/**
 * One place that decides whether a test may run here. Returns a skip reason
 * (a string, shown by the runner) or false. Tests pass it as `{ skip: ... }`.
 */
export function needsRoot(): string | false {
  return process.getuid?.() === 0 ? false : "needs root (run the suite as root)";
}

export function needsCommands(...cmds: string[]): string | false {
  const missing = cmds.filter((c) => which(c) === undefined);
  return missing.length === 0 ? false : `needs ${missing.join(", ")} (apt-get install them; .ci/run does)`;
}

/** Combine requirements: the first reason wins. */
export function requires(...reasons: (string | false)[]): string | false {
  return reasons.find((r) => r !== false) ?? false;
}

/** Host facts that machines of this kind truly cannot provide: the only skips CI=true accepts (scripts/test.mjs). */
export type HostFact = "device-mapper" | "a firecracker binary" | "a jailer binary" | "systemd-resolved";

/** A skip reason naming a host fact; the prefix is what scripts/test.mjs matches. */
export function hostLacks(fact: HostFact, detail: string): string {
  return `host lacks ${fact}: ${detail}`;
}

/**
 * Whether the kernel's device-mapper driver answers, asked of the driver itself: a
 * /dev/mapper/control node can exist (udev or a package's postinst made it) while the
 * kernel has no dm driver behind it, and then every dmsetup call fails with ENODEV.
 */
export function deviceMapper(): string | false {
  if (which("dmsetup") === undefined) return "needs dmsetup (apt-get install dmsetup; .ci/run does)";
  const r = spawnSync("dmsetup", ["version"], { encoding: "utf8", timeout: 10_000 });
  if (r.status === 0 && /^Driver version:/m.test(r.stdout)) return false;
  return hostLacks("device-mapper", `dmsetup version: ${(r.stderr || r.stdout || String(r.error)).trim().split("\n")[0] ?? ""}`);
}
