import { existsSync } from "node:fs";

export type InstallMode = "systemd" | "detached";

/**
 * sd_booted(3)'s test: /run/systemd/system exists only when systemd is PID 1. Without it (containers,
 * CI machines) units would never start, so the detached mode is the only one that works; it is
 * chosen only when asked for, so nobody gets services that do not come back after a reboot by surprise.
 */
export function chooseMode(requested: string | undefined, systemdBooted: boolean): { mode: InstallMode } | { error: string } {
  if (requested !== undefined && requested !== "systemd" && requested !== "detached") return { error: `--mode must be systemd or detached, not ${JSON.stringify(requested)}` };
  if (requested === "detached") return { mode: "detached" };
  if (systemdBooted) return { mode: "systemd" };
  if (requested === "systemd") return { error: "--mode systemd: systemd is not PID 1 on this host (/run/systemd/system is missing), so its units would never start; use --mode detached" };
  return { error: "systemd is not PID 1 on this host (/run/systemd/system is missing): run again with --mode detached, which starts both services as detached processes (pidfiles in /run/banger-services, logs in /var/log/banger) that do not come back after a reboot" };
}

export function systemdBooted(): boolean {
  return existsSync("/run/systemd/system");
}
