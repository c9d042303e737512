import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { install, restartServices } from "../../../install/install.js";
import { installLayout, installRootFromEnv, type InstallLayout } from "../../../install/layout.js";
import { readInstallMetadata, type InstallMetadata } from "../../../install/metadata.js";
import { chooseMode, systemdBooted } from "../../../install/mode.js";
import { resolveOwner } from "../../../install/owner.js";
import { reach } from "../../../install/ready.js";
import { SERVICES } from "../../../install/layout.js";
import { servicesFor } from "../../../install/services.js";
import { uninstall } from "../../../install/uninstall.js";
import { fetchFromRegistry, update, UpdateRolledBackError } from "../../../install/update.js";
import { systemRunner } from "../../../system/runner.js";
import { VERSION } from "../../../version.js";
import { printJson, UsageError, type CliContext } from "../../command.js";
import { noPositionals, parseFlags } from "../../flags.js";
import { INSTALL_FLAGS, RESTART_FLAGS, UNINSTALL_FLAGS, UPDATE_FLAGS } from "./install.js";

/*
 * The bodies of `banger system install|restart|uninstall` and `banger update`, loaded on use (like doctor-run.ts) and
 * bundled apart as dist/bin/banger-system.cjs: they pull zod, koffi and the copy code, which no
 * everyday command should parse at start.
 */

/** `what` is the command after "banger", e.g. "system install". */
function requireRoot(ctx: CliContext, what: string): boolean {
  if (process.getuid?.() === 0) return true;
  ctx.stderr.write(`error: banger ${what} acts as root (root-owned code, units, the helper): run it with sudo, e.g. sudo banger ${what}\n`);
  return false;
}

function layoutOf(ctx: CliContext): InstallLayout {
  return installLayout(installRootFromEnv(ctx.env));
}

function installed(ctx: CliContext, layout: InstallLayout): InstallMetadata | undefined {
  const meta = readInstallMetadata(layout.metadataFile);
  if (meta === undefined) ctx.stderr.write(`error: banger is not installed (${layout.metadataFile} does not exist); install it with: sudo banger system install\n`);
  return meta;
}

/** Progress lines on stderr; none under --json, whose stdout is the one result. */
const log = (ctx: CliContext, json: boolean | undefined) => (line: string): void => { if (json !== true) ctx.stderr.write(`${line}\n`); };

/** The package this CLI runs from: argv[1] is <package>/dist/bin/banger.cjs, reached through npm's bin link. */
function packageDir(): string {
  return dirname(dirname(dirname(realpathSync(process.argv[1] ?? ""))));
}

export async function runInstall(args: readonly string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseFlags(INSTALL_FLAGS, args);
  noPositionals(positionals, "banger system install");
  const mode = chooseMode(values.mode, systemdBooted());
  if ("error" in mode) throw new UsageError(mode.error);
  if (!requireRoot(ctx, "system install")) return 1;
  const owner = resolveOwner(values.owner, ctx.env);
  if ("error" in owner) throw new UsageError(owner.error);
  const layout = layoutOf(ctx);
  if (mode.mode === "systemd" && layout.root !== "/") throw new UsageError("--mode systemd installs into the host's own tree only (BANGER_INSTALL_ROOT is set); use --mode detached");
  const meta = await install({ layout, owner, mode: mode.mode, packageDir: packageDir(), version: VERSION, node: process.execPath, runner: systemRunner, log: log(ctx, values.json) });
  if (values.json === true) {
    printJson(ctx.stdout, meta);
    return 0;
  }
  ctx.stdout.write(`banger ${meta.version} installed (${meta.mode}) for ${meta.owner.name}: bridge ${meta.network.bridge} ${meta.network.cidr}, state in ${meta.paths.state_dir}\nnext, as ${meta.owner.name}: banger vm run --rm -- uname -r\n`);
  return 0;
}

export async function runRestart(args: readonly string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseFlags(RESTART_FLAGS, args);
  noPositionals(positionals, "banger system restart");
  if (!requireRoot(ctx, "system restart")) return 1;
  const layout = layoutOf(ctx);
  const meta = installed(ctx, layout);
  if (meta === undefined) return 1;
  await restartServices(meta, layout, systemRunner, log(ctx, values.json));
  if (values.json === true) printJson(ctx.stdout, { restarted: [...SERVICES], mode: meta.mode, version: meta.version });
  else ctx.stdout.write(`bangerd-root and bangerd restarted (${meta.mode}); running VMs were kept and re-adopted\n`);
  return 0;
}

export async function runUninstall(args: readonly string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseFlags(UNINSTALL_FLAGS, args);
  noPositionals(positionals, "banger system uninstall");
  if (!requireRoot(ctx, "system uninstall")) return 1;
  const layout = layoutOf(ctx);
  const meta = installed(ctx, layout);
  if (meta === undefined) return 1;
  await uninstall({ layout, meta, runner: systemRunner, force: values.force === true, purge: values.purge === true, log: log(ctx, values.json) });
  if (values.json === true) printJson(ctx.stdout, { uninstalled: true, purged: values.purge === true, state_dir: meta.paths.state_dir });
  else ctx.stdout.write(`banger uninstalled${values.purge === true ? " (state purged)" : `; images, disks and state kept in ${meta.paths.state_dir} (remove with --purge)`}\n`);
  return 0;
}

export async function runUpdate(args: readonly string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseFlags(UPDATE_FLAGS, args);
  noPositionals(positionals, "banger update");
  if ((values.from === undefined) === (values.version === undefined)) throw new UsageError("give exactly one of --from TARBALL (a package made by npm pack) or --version V (fetched from the npm registry)");
  const timeoutS = values.timeout === undefined ? UPDATE_FLAGS.timeout.default : Number(values.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--timeout takes seconds (e.g. 60), not ${JSON.stringify(values.timeout)}`);
  if (!requireRoot(ctx, "update")) return 1;
  const layout = layoutOf(ctx);
  const meta = installed(ctx, layout);
  if (meta === undefined) return 1;
  const scratch = mkdtempSync(join(tmpdir(), "banger-update-"));
  try {
    const tarball = values.from !== undefined ? resolve(values.from) : await fetchFromRegistry(systemRunner, values.version ?? "", scratch);
    const r = await update({ layout, meta, tarball, runner: systemRunner, log: log(ctx, values.json), healthTimeoutMs: timeoutS * 1000 });
    if (values.json === true) {
      printJson(ctx.stdout, { from: r.from, to: r.to, mode: meta.mode, cli_version: VERSION });
      return 0;
    }
    ctx.stdout.write(`banger updated from ${r.from} to ${r.to}; bangerd-root and bangerd restarted (${meta.mode}), running VMs kept\n`);
    // The services run root's copy under `current`; the `banger` on PATH is npm's and is not ours to replace.
    if (r.to !== VERSION) ctx.stdout.write(`the banger CLI running this is ${VERSION}; to match the services: sudo npm install -g --ignore-scripts ${values.from !== undefined ? tarball : `banger@${r.to}`}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof UpdateRolledBackError)) throw e;
    ctx.stderr.write(`error: ${e.message}\n`);
    return 1;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** What `system status` adds on an installed host: the mode, each service as its manager sees it, every version. */
export interface InstallStatus {
  readonly mode: InstallMetadata["mode"];
  readonly version: string;
  readonly owner: InstallMetadata["owner"];
  readonly services: Record<string, { running: boolean; pid?: number | undefined; detail: string }>;
  readonly versions: { cli: string; installed: string; daemon?: string | undefined; helper?: string | undefined; mismatch: boolean };
  readonly paths: InstallMetadata["paths"];
  readonly network: InstallMetadata["network"];
}

export async function installStatus(ctx: CliContext): Promise<InstallStatus | undefined> {
  const layout = layoutOf(ctx);
  const meta = readInstallMetadata(layout.metadataFile);
  if (meta === undefined) return undefined;
  const services = servicesFor(meta, layout, systemRunner);
  const states: InstallStatus["services"] = {};
  for (const s of SERVICES) {
    try {
      const st = await services.status(s);
      states[s] = { running: st.running, pid: st.pid, detail: st.detail };
    } catch (e) {
      states[s] = { running: false, detail: `unknown: ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  const r = await reach(meta);
  const seen = [VERSION, meta.version, r.daemon.version, r.helper.version].filter((v): v is string => v !== undefined);
  return {
    mode: meta.mode,
    version: meta.version,
    owner: meta.owner,
    services: states,
    versions: { cli: VERSION, installed: meta.version, daemon: r.daemon.version, helper: r.helper.version, mismatch: new Set(seen).size > 1 },
    paths: meta.paths,
    network: meta.network,
  };
}
