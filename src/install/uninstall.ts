import { closeSync, constants, openSync, rmdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { loadConfig } from "../config/load.js";
import { removeTree } from "../roothelper/fs/remove-tree.js";
import { callUnix } from "../rpc/unix-client.js";
import type { Runner } from "../system/runner.js";
import { installFiles, SERVICES, type InstallLayout } from "./layout.js";
import type { InstallMetadata } from "./metadata.js";
import { waitUntilServing } from "./ready.js";
import { servicesFor } from "./services.js";
import { systemdServices } from "./systemd-services.js";

export interface UninstallRequest {
  readonly layout: InstallLayout;
  readonly meta: InstallMetadata;
  readonly runner: Runner;
  /** Stop running VMs instead of refusing. */
  readonly force: boolean;
  /** Remove the state dir too (images, disks, the database). */
  readonly purge: boolean;
  readonly log: (line: string) => void;
}

interface VmSummary { readonly name: string; readonly state: string }

/** A VM in any state but these still has (or is getting) a VMM and a tap. */
const AT_REST = new Set(["stopped", "error"]);

/**
 * `banger system uninstall`: running VMs refused (or stopped with --force), the host network torn
 * down by the helper, both services stopped and their units or pidfiles removed, then the code,
 * /etc/banger, logs and run dirs; the state dir only with --purge. Collect-and-continue past the
 * refusal: every step is tried, and the errors are reported together.
 */
export async function uninstall(req: UninstallRequest): Promise<{ removed: string[] }> {
  const { layout, meta, log } = req;
  const services = servicesFor(meta, layout, req.runner);
  // Both must answer: the daemon knows the VMs, the helper removes the network.
  for (const [service, which] of [["bangerd-root", "helper"], ["bangerd", "daemon"]] as const) {
    await services.start(service);
    await waitUntilServing(meta, which, meta.version).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}: uninstall needs both services up to stop VMs and remove the network; fix that (see ${services.mode === "systemd" ? `journalctl -u ${service}` : installFiles.logFile(layout, service)}) and run it again`, { cause: e });
    });
  }
  const daemon = (method: string, params: unknown, timeoutMs = 60_000): Promise<unknown> => callUnix(meta.paths.daemon_socket, method, params, { timeoutMs });
  const { vms } = (await daemon("vm.list", {})) as { vms: VmSummary[] };
  const live = vms.filter((vm) => !AT_REST.has(vm.state));
  if (live.length > 0 && !req.force) {
    throw new Error(`VMs are running: ${live.map((vm) => `${vm.name} (${vm.state})`).join(", ")}; stop them (banger vm stop NAME) or run \`sudo banger system uninstall --force\` to stop them for you. Nothing was removed`);
  }
  const errors: unknown[] = [];
  const removed: string[] = [];
  const step = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      errors.push(new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
    }
  };
  for (const vm of live) await step(`stopping VM ${vm.name}`, async () => { log(`stopping VM ${vm.name}`); await daemon("vm.stop", { name: vm.name }, 300_000); });
  await step("network teardown", async () => {
    const r = (await daemon("system.teardown_network", {})) as { removed: string[] };
    removed.push(...r.removed.map((x) => `network:${x}`));
  });
  for (const service of ["bangerd", "bangerd-root"] as const) await step(`stopping ${service}`, async () => { log(`stopping ${service}`); await services.stop(service); });
  if (services.mode === "systemd") {
    const systemd = systemdServices(req.runner);
    await step("disabling units", () => systemd.disable(SERVICES));
    for (const s of SERVICES) await step(`removing ${installFiles.unitFile(layout, s)}`, () => { rmSync(installFiles.unitFile(layout, s), { force: true }); removed.push(installFiles.unitFile(layout, s)); });
    await step("systemctl daemon-reload", () => systemd.reload());
  }
  // vmm.jail_dir, made by the helper when a jailer is installed (read before /etc/banger goes): every
  // VM's jail is removed when it stops, so what is left are directories the helper made, removed only
  // when empty. A non-empty one (another tool's, or a jail a failed cleanup left) stays, and is said.
  await step("removing the jail dir", () => {
    const vmm = loadConfig(layout.configFile).vmm;
    // The jailer's own level: <jail dir>/<name of the firecracker binary>/<vm id>.
    for (const dir of [join(vmm.jail_dir, basename(vmm.firecracker_bin)), vmm.jail_dir]) {
      try {
        rmdirSync(dir);
        removed.push(dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOTEMPTY" || code === "EEXIST") log(`kept ${dir}: it is not empty`);
        else if (code !== "ENOENT") throw e;
      }
    }
  });
  // Root's own trees: no name in them is the owner's to change.
  for (const dir of [layout.libDir, layout.etcDir, layout.pidDir, layout.logDir, layout.helperDir]) {
    await step(`removing ${dir}`, () => { rmSync(dir, { recursive: true, force: true }); removed.push(dir); });
  }
  // The owner's: removed by descriptor beneath root's parent, never following a link the owner made.
  const ownerDirs = [layout.runtimeDir, ...(req.purge ? [layout.stateDir] : [])];
  for (const dir of ownerDirs) await step(`removing ${dir}`, () => { if (removeOwnerTree(dir)) removed.push(dir); });
  if (errors.length > 0) throw new AggregateError(errors, `uninstall finished with ${errors.length} error(s): ${errors.map((e) => (e as Error).message).join("; ")}; removed: ${removed.join(", ") || "nothing"}`);
  return { removed };
}

function removeOwnerTree(path: string): boolean {
  const parentFd = openSync(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    return removeTree(parentFd, basename(path));
  } finally {
    closeSync(parentFd);
  }
}
