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
