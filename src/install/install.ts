import { mkdirSync, readFileSync } from "node:fs";
import { stringify as toToml } from "smol-toml";
import { loadConfig } from "../config/load.js";
import { trustedBinary } from "../roothelper/fs/trust.js";
import type { Runner } from "../system/runner.js";
import { installCode } from "./copy-code.js";
import { installFiles, SERVICES, type InstallLayout } from "./layout.js";
import { readInstallMetadata, writeFileAtomic, writeInstallMetadata, type InstallMetadata } from "./metadata.js";
import type { InstallMode } from "./mode.js";
import { ownerDir } from "./owner-dir.js";
import type { Account } from "./owner.js";
import { waitUntilServing } from "./ready.js";
import { servicesFor } from "./services.js";
import { pickBridgeSubnet } from "./subnet.js";
import { systemdServices } from "./systemd-services.js";
import { renderUnits } from "./units.js";

export interface InstallRequest {
  readonly layout: InstallLayout;
  readonly owner: Account;
  readonly mode: InstallMode;
  /** The package the running CLI came from (npm's global copy, or a checkout). */
  readonly packageDir: string;
  readonly version: string;
  /** The node binary running this CLI: the services run under it, so it must be root's alone. */
  readonly node: string;
  readonly runner: Runner;
  readonly log: (line: string) => void;
}

const DEFAULT_BRIDGE = "banger0";

/**
 * `banger system install`, also an in-place upgrade when run again: code copied to root's versioned
 * tree and `current` swapped, /etc/banger written, the system layout made, the services (re)started
 * helper first, then waited for until both answer as this version.
 */
export async function install(req: InstallRequest): Promise<InstallMetadata> {
  const { layout, owner } = req;
  const prior = readInstallMetadata(layout.metadataFile);
  if (prior !== undefined && prior.owner.uid !== owner.uid) {
    throw new Error(`banger is installed for ${prior.owner.name} (uid ${prior.owner.uid}); one install has one owner: run \`sudo banger system uninstall\` first to hand it to ${owner.name}`);
  }
  if (prior !== undefined && prior.mode !== req.mode) {
    throw new Error(`banger is installed in ${prior.mode} mode; run \`sudo banger system uninstall\` first to switch to ${req.mode}`);
  }
  // Refused before anything is written: services running a node the owner could replace would run the owner's code as root.
  const node = trustedBinary("node", req.node);
  if (node === undefined) throw new Error(`node ${req.node} cannot be found`);

  // Decided before anything is written: no free subnet leaves nothing behind.
  const { network, configText } = await bridgeNetwork(layout, req.runner);
  mkdirSync(layout.etcDir, { recursive: true, mode: 0o755 });
  if (configText !== undefined) writeFileAtomic(layout.configFile, configText, 0o644);
  ownerDir(layout.stateDir, owner);

  req.log(`copying banger ${req.version} to ${installFiles.versionDir(layout, req.version)}`);
  installCode(layout, req.packageDir, req.version);

  const meta: InstallMetadata = {
    schema: 1,
    version: req.version,
    mode: req.mode,
    owner: { name: owner.name, uid: owner.uid, gid: owner.gid },
    node: node.path,
    paths: {
      root: layout.root,
      state_dir: layout.stateDir,
      runtime_dir: layout.runtimeDir,
      config: layout.configFile,
      helper_socket: layout.helperSocket,
      daemon_socket: layout.daemonSocket,
      log_dir: layout.logDir,
      lib_dir: layout.libDir,
    },
    network,
    installed_at: new Date().toISOString(),
  };
  writeInstallMetadata(layout.metadataFile, meta);

  if (req.mode === "systemd") {
    const units = renderUnits(meta, layout);
    mkdirSync(layout.unitDir, { recursive: true, mode: 0o755 });
    for (const s of SERVICES) writeFileAtomic(installFiles.unitFile(layout, s), units[s], 0o644);
    const systemd = systemdServices(req.runner);
    await systemd.reload();
    await systemd.enable(SERVICES);
  }
  await restartServices(meta, layout, req.runner, req.log);
  return meta;
}

/**
 * Helper first (the daemon's start-up needs it), each waited for (up to `timeoutMs` to answer as
 * meta.version); running VMs are left alone and re-adopted.
 */
export async function restartServices(meta: InstallMetadata, layout: InstallLayout, runner: Runner, log: (line: string) => void, timeoutMs?: number): Promise<void> {
  const services = servicesFor(meta, layout, runner);
  for (const [service, which] of [["bangerd-root", "helper"], ["bangerd", "daemon"]] as const) {
    log(`restarting ${service} (${services.mode})`);
    await services.restart(service);
    try {
      await waitUntilServing(meta, which, meta.version, timeoutMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}; see ${services.mode === "systemd" ? `journalctl -u ${service}` : installFiles.logFile(layout, service)}`, { cause: e });
    }
  }
}

/**
 * The bridge's name and subnet: kept from an existing /etc/banger/config.toml (a re-install, or the
 * admin's own choice), else a free private /24 is picked and written there, where helper and daemon
 * both read it.
 */
async function bridgeNetwork(layout: InstallLayout, runner: Runner): Promise<{ network: { bridge: string; cidr: string }; configText?: string }> {
  let existing: string | undefined;
  try {
    existing = readFileSync(layout.configFile, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (existing !== undefined) {
    const cfg = loadConfig(layout.configFile);
    return { network: { bridge: cfg.network.bridge, cidr: cfg.network.cidr } };
  }
  const cidr = await pickBridgeSubnet(runner, DEFAULT_BRIDGE);
  const configText = `# Written by \`banger system install\`; read by bangerd-root and bangerd. See README.md for every key.\n${toToml({ network: { bridge: DEFAULT_BRIDGE, cidr } })}\n`;
  return { network: { bridge: DEFAULT_BRIDGE, cidr }, configText };
}
