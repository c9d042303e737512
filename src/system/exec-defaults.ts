import type { ExecDefaults } from "../model/exec-defaults.js";
import type { RemoteExecOptions } from "./ssh-exec.js";

export function hasExecDefaults(d: ExecDefaults): boolean {
  return d.user !== null || d.workdir !== null || d.env.length > 0;
}

/**
 * docker's rule: the image's user, env and workdir apply unless the command
 * gives its own (-u, -w win; -e KEY overrides the image's KEY, the rest stay).
 * One function so the ssh path and the daemon's exec channel agree.
 */
export function effectiveExecOptions(defaults: ExecDefaults, opts: RemoteExecOptions): RemoteExecOptions {
  const given = new Set((opts.env ?? []).map(([k]) => k));
  const env = [...defaults.env.filter(([k]) => !given.has(k)), ...(opts.env ?? [])];
  const user = opts.user ?? defaults.user ?? undefined;
  const workdir = opts.workdir ?? defaults.workdir ?? undefined;
  return {
    ...opts,
    ...(env.length > 0 ? { env } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(workdir !== undefined ? { workdir } : {}),
  };
}
