import { hasControlChars } from "../../model/text.js";

/**
 * Immutable argv builders for firecracker and the jailer. Firecracker's
 * parser only accepts `--flag value` as two items and rejects a value that
 * starts with `--`, so values are checked here before they reach it.
 */

function value(field: string, v: string): string {
  if (v === "" || v.startsWith("--") || hasControlChars(v)) throw new Error(`${field}: ${JSON.stringify(v)} cannot be passed to firecracker`);
  return v;
}

/** Firecracker's --id and the jailer's --id: 1..64 of [A-Za-z0-9-]. */
export function instanceId(vmId: string): string {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(vmId)) throw new Error(`vmId: ${JSON.stringify(vmId)} is not a valid firecracker instance id`);
  return vmId;
}

/** firecracker run directly (no jailer): the API socket is a host path. */
export function buildFirecrackerArgv(firecrackerBin: string, opts: { readonly apiSocket: string; readonly vmId: string }): readonly string[] {
  return Object.freeze([value("firecrackerBin", firecrackerBin), "--api-sock", value("apiSocket", opts.apiSocket), "--id", instanceId(opts.vmId)]);
}

export interface JailerOptions {
  readonly jailerBin: string;
  readonly firecrackerBin: string;
  readonly vmId: string;
  readonly uid: number;
  readonly gid: number;
  /** <base>/<basename(exec)>/<id>/root becomes the chroot; must exist and be on the same fs as disks (hard links). */
  readonly chrootBaseDir: string;
  /** Path of the API socket INSIDE the jail (resolved from the chroot's /). */
  readonly apiSocketInJail: string;
}

/**
 * The jailer argv. The jailer itself passes `--id` to firecracker, so it is
 * NOT repeated after `--` (duplicate flag = exit 153). No --daemonize: the
 * caller already detaches (own session), and without it the jailer execs
 * firecracker in place, so the spawned pid IS firecracker's pid.
 */
export function buildJailerArgv(o: JailerOptions): readonly string[] {
  for (const [f, n] of [["uid", o.uid], ["gid", o.gid]] as const) {
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${f}: ${n} is not a non-root id; the jailer must drop privileges`);
  }
  return Object.freeze([
    value("jailerBin", o.jailerBin),
    "--id", instanceId(o.vmId),
    "--exec-file", value("firecrackerBin", o.firecrackerBin),
    "--uid", String(o.uid),
    "--gid", String(o.gid),
    "--chroot-base-dir", value("chrootBaseDir", o.chrootBaseDir),
    "--",
    "--api-sock", value("apiSocketInJail", o.apiSocketInJail),
  ]);
}
