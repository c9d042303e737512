import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { runText, type Runner } from "../system/runner.js";
import { copyVersion, pointCurrentAt } from "./copy-code.js";
import { restartServices } from "./install.js";
import { installFiles, SERVICES, VERSION_PATTERN, type InstallLayout, type ServiceName } from "./layout.js";
import { writeInstallMetadata, type InstallMetadata } from "./metadata.js";
import { argvAsUser, serviceCommand } from "./service-command.js";
import { servicesFor, setprivPath } from "./services.js";

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

/** What `--check` prints: bangerd adds the schema it writes. */
const checkSchema = z.object({ version: z.string(), schema: z.number().int().optional() }).passthrough();
const restoredSchema = z.object({ restored: z.string().optional(), setAside: z.string().optional() });

/**
 * `banger update`: the new version is copied beside the current one (root's, like install's),
 * checked to start (each service's --check loads its bundle and native modules as that version),
 * then `current` is swapped by one rename and the helper, then the daemon, are restarted through the
 * install's service manager, which leaves VMMs running (the daemon re-adopts them). If either does
 * not answer as the new version in time, `current` is swapped back and both restarted again on the
 * old version: the VMs never stop, and the host is left on a version that works. When the new
 * daemon writes a newer schema, the rollback also puts back the database copy taken before it
 * migrated (the old daemon would refuse the migrated one).
 */
export async function update(req: UpdateRequest): Promise<UpdateResult> {
  const { layout, meta, log } = req;
  const from = meta.version;
  const to = await unpack(req);
  const dir = installFiles.versionDir(layout, to);
  let schemas: { from?: number | undefined; to?: number | undefined };
  try {
    schemas = { to: await checkStarts(req, dir, to), from: await daemonSchema(req, installFiles.versionDir(layout, from)) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`banger ${to} does not start here, so nothing was changed (still ${from}): ${(e as Error).message}`, { cause: e });
  }
  // Migrations only run forward: if the new daemon migrates the database, the old one would refuse it after a rollback.
  const migrates = schemas.from !== undefined && schemas.to !== undefined && schemas.to > schemas.from;

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
      if (migrates) await restoreSchema(req);
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

/** `service --check` from a version's directory, run with the install's node. */
async function check(req: UpdateRequest, dir: string, service: ServiceName): Promise<z.output<typeof checkSchema>> {
  const out = await runText(req.runner, [req.meta.node, installFiles.serviceBin(dir, service), "--check"], { timeoutMs: 30_000 });
  try {
    return checkSchema.parse(JSON.parse(out));
  } catch {
    throw new Error(`${service} --check printed ${JSON.stringify(out.trim().slice(0, 200))}, not its version`);
  }
}

/** Each service's bundle in the new directory must report the new version. Returns the schema its daemon writes. */
async function checkStarts(req: UpdateRequest, dir: string, version: string): Promise<number | undefined> {
  let schema: number | undefined;
  for (const service of SERVICES) {
    const reported = await check(req, dir, service);
    if (reported.version !== version) throw new Error(`${service} in ${dir} reports version ${reported.version}, but its package.json says ${version}`);
    if (service === "bangerd") schema = reported.schema;
  }
  return schema;
}

/** The schema the installed daemon writes; undefined for a version without --check (nothing to compare). */
async function daemonSchema(req: UpdateRequest, dir: string): Promise<number | undefined> {
  try {
    return (await check(req, dir, "bangerd")).schema;
  } catch {
    return undefined;
  }
}

/**
 * With the daemon stopped, the old version's own daemon (as the owner, like its service) puts back
 * the copy of the database taken before the new one migrated it (bangerd --restore-schema).
 */
async function restoreSchema(req: UpdateRequest): Promise<void> {
  const { meta, layout } = req;
  await servicesFor(meta, layout, req.runner).stop("bangerd");
  const cmd = serviceCommand(meta, layout, "bangerd");
  const out = await runText(req.runner, argvAsUser(cmd, setprivPath("the rollback restores the database as the owner"), ["--restore-schema"]), { env: { ...cmd.env }, timeoutMs: 60_000 });
  const done = restoredSchema.parse(JSON.parse(out));
  if (done.restored !== undefined) req.log(`state database put back from ${done.restored}; the one the new version migrated is kept at ${done.setAside ?? "?"}`);
}

/** `--version V`: the package from the npm registry, fetched with npm's own client into `dir`. Returns the tarball. */
export async function fetchFromRegistry(runner: Runner, version: string, dir: string): Promise<string> {
  if (!VERSION_PATTERN.test(version)) throw new Error(`--version ${JSON.stringify(version)} is not a version (e.g. 0.2.0)`);
  const out = await runText(runner, ["npm", "pack", `banger@${version}`, "--ignore-scripts", "--pack-destination", dir], { timeoutMs: 300_000 });
  const name = out.trim().split("\n").pop() ?? "";
  if (!/^[A-Za-z0-9._-]+\.tgz$/.test(name)) throw new Error(`npm pack banger@${version} printed ${JSON.stringify(out.trim().slice(-200))}, not a tarball name`);
  return join(dir, name);
}
