import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { runText, type Runner } from "../system/runner.js";
import { copyVersion, pointCurrentAt } from "./copy-code.js";
import { restartServices } from "./install.js";
import { installFiles, SERVICES, VERSION_PATTERN, type InstallLayout } from "./layout.js";
import { writeInstallMetadata, type InstallMetadata } from "./metadata.js";

export interface UpdateRequest {
  readonly layout: InstallLayout;
  readonly meta: InstallMetadata;
  /** The package to switch to, as `npm pack` makes it (a .tgz whose entries are under package/). */
  readonly tarball: string;
  readonly runner: Runner;
  readonly log: (line: string) => void;
  /** How long each service of the new version gets to answer as that version before the rollback. */
  readonly healthTimeoutMs?: number | undefined;
}

export interface UpdateResult {
  readonly from: string;
  readonly to: string;
}

/** The new version did not come up; the old one was put back and is serving again. */
export class UpdateRolledBackError extends Error {
  override readonly name = "UpdateRolledBackError";
}

const checkSchema = z.object({ version: z.string() }).passthrough();

/**
 * `banger update`: the new version is copied beside the current one (root's, like install's),
 * checked to start (each service's --check loads its bundle and native modules as that version),
 * then `current` is swapped by one rename and the helper, then the daemon, are restarted through the
 * install's service manager, which leaves VMMs running (the daemon re-adopts them). If either does
 * not answer as the new version in time, `current` is swapped back and both restarted again on the
 * old version: the VMs never stop, and the host is left on a version that works.
 */
export async function update(req: UpdateRequest): Promise<UpdateResult> {
  const { layout, meta, log } = req;
  const from = meta.version;
  const to = await unpack(req);
  const dir = installFiles.versionDir(layout, to);
  try {
    await checkStarts(req, dir, to);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`banger ${to} does not start here, so nothing was changed (still ${from}): ${(e as Error).message}`, { cause: e });
  }

  const next: InstallMetadata = { ...meta, version: to };
  log(`switching ${layout.currentLink} from ${from} to ${to}`);
  pointCurrentAt(layout, to);
  writeInstallMetadata(layout.metadataFile, next);
  try {
    await restartServices(next, layout, req.runner, log, req.healthTimeoutMs);
  } catch (e) {
    const why = (e as Error).message;
    log(`banger ${to} is not healthy (${why}); rolling back to ${from}`);
    pointCurrentAt(layout, from);
    writeInstallMetadata(layout.metadataFile, meta);
    try {
      await restartServices(meta, layout, req.runner, log, req.healthTimeoutMs);
    } catch (back) {
      throw new Error(`banger ${to} is not healthy (${why}), and after switching back ${from} did not come up either (${(back as Error).message}); running VMs were not stopped. Fix what the service logs name, then run: sudo banger system restart`, { cause: back });
    }
    rmSync(dir, { recursive: true, force: true });
    throw new UpdateRolledBackError(`banger ${to} did not become healthy (${why}); rolled back to ${from}, which is serving again with the running VMs kept`, { cause: e });
  }
  return { from, to };
}

/**
 * Unpacks the tarball in a root-only scratch dir under the lib dir and copies its package into
 * <lib dir>/<version> (the same copy install makes: runtime modules only, no symlink followed).
 * `current` is not touched. Returns the version the package names.
 */
async function unpack(req: UpdateRequest): Promise<string> {
  const { layout, meta } = req;
  const scratch = mkdtempSync(join(layout.libDir, ".unpack-"));
  try {
    await req.runner.run(["tar", "-xzf", req.tarball, "-C", scratch, "--no-same-owner"], { timeoutMs: 120_000 });
    const packageDir = join(scratch, "package");
    let pkg: { version?: unknown };
    try {
      pkg = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { version?: unknown };
    } catch (e) {
      throw new Error(`${req.tarball} is not a banger package (no readable package/package.json: ${(e as Error).message}); make one with npm pack`, { cause: e });
    }
    const version = pkg.version;
    if (typeof version !== "string" || !VERSION_PATTERN.test(version)) throw new Error(`${req.tarball}: package.json version ${JSON.stringify(version)} cannot name a version directory`);
    if (version === meta.version) throw new Error(`banger ${version} is already the installed version; to reinstall it run: sudo banger system install`);
    req.log(`copying banger ${version} to ${installFiles.versionDir(layout, version)}`);
    copyVersion(layout, packageDir, version);
    return version;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Each service's bundle, run from the new directory with the install's node, must report the new version. */
async function checkStarts(req: UpdateRequest, dir: string, version: string): Promise<void> {
  for (const service of SERVICES) {
    const out = await runText(req.runner, [req.meta.node, installFiles.serviceBin(dir, service), "--check"], { timeoutMs: 30_000 });
    let reported: string;
    try {
      reported = checkSchema.parse(JSON.parse(out)).version;
    } catch {
      throw new Error(`${service} --check printed ${JSON.stringify(out.trim().slice(0, 200))}, not its version`);
    }
    if (reported !== version) throw new Error(`${service} in ${dir} reports version ${reported}, but its package.json says ${version}`);
  }
}

/** `--version V`: the package from the npm registry, fetched with npm's own client into `dir`. Returns the tarball. */
export async function fetchFromRegistry(runner: Runner, version: string, dir: string): Promise<string> {
  if (!VERSION_PATTERN.test(version)) throw new Error(`--version ${JSON.stringify(version)} is not a version (e.g. 0.2.0)`);
  const out = await runText(runner, ["npm", "pack", `banger@${version}`, "--ignore-scripts", "--pack-destination", dir], { timeoutMs: 300_000 });
  const name = out.trim().split("\n").pop() ?? "";
  if (!/^[A-Za-z0-9._-]+\.tgz$/.test(name)) throw new Error(`npm pack banger@${version} printed ${JSON.stringify(out.trim().slice(-200))}, not a tarball name`);
  return join(dir, name);
}
