import { vmFiles } from "../../paths/paths.js";
import { egressStep, ensureVmDir, hostKeyStep, leaseStep, natStep, need, networkStep, pinHostKeyStep, launchStep, portsStep, publishDnsStep, waitSshStep, type BootCtx, type BootEntry, type BootStep, type RestoreSource } from "./boot-steps.js";

/**
 * The steps that make a VM from a snapshot (vm restore, vm fork, a create from a warm template).
 * Unlike create, nothing is written into the disks: the saved guest's page cache already describes
 * them. The guest learns its identity (hostname, MAC, IP, host key, clock, entropy) from its agent
 * once it runs again, before anything probes it on its new address.
 */
function source(ctx: BootCtx, step: string): RestoreSource {
  return need(ctx.source, "a snapshot to restore from", step);
}

export const cloneRootFromSnapshotStep: BootStep = {
  name: "clone-root",
  async run(ctx) {
    ensureVmDir(ctx);
    ctx.root = await ctx.env.deps.storage.cloneRootFrom({ vmId: ctx.vmId, vmDir: ctx.vmDir, source: source(ctx, "clone-root").rootDisk }, ctx.opId);
    await ctx.env.handles.save(ctx.vmId, { root_disk: { ...ctx.root } });
  },
  async undo(ctx) {
    if (ctx.root !== undefined) await ctx.env.deps.storage.destroyRoot(ctx.root, ctx.opId);
  },
};

export const cloneWorkFromSnapshotStep: BootStep = {
  name: "work-disk",
  async run(ctx) {
    ensureVmDir(ctx);
    const path = vmFiles.workDisk(ctx.vmDir);
    await ctx.env.deps.storage.cloneFile(source(ctx, "work-disk").workDisk, path, { spare: true }, ctx.opId);
    ctx.workDisk = path;
    await ctx.env.handles.save(ctx.vmId, { work_disk: path });
  },
  async undo(ctx) {
    if (ctx.workDisk !== undefined) await ctx.env.deps.storage.destroyWorkDisk(ctx.workDisk, ctx.opId);
  },
};

/** The state is loaded paused: run the guest, then have its agent take the new identity (acknowledged). */
export const identityStep: BootStep = {
  name: "identity",
  async run(ctx) {
    const vmm = need(ctx.vmm, "a running VMM", "identity");
    await ctx.env.deps.vmm.setPaused(vmm, false, ctx.opId);
    const lease = need(ctx.lease, "a lease", "identity");
    await ctx.env.deps.vmm.sendIdentity(vmm, {
      hostname: ctx.name,
      mac: lease.mac.toLowerCase(),
      ip: lease.ip,
      prefix: lease.prefix,
      gateway: lease.gateway,
      nameservers: [...lease.nameservers],
      host_key_b64: need(ctx.hostKey, "a host key", "identity").private.toString("base64"),
    }, ctx.opId);
  },
};

export const RESTORE_STEPS: readonly BootEntry[] = [
  leaseStep,
  { name: "prepare", parallel: [hostKeyStep, cloneRootFromSnapshotStep, cloneWorkFromSnapshotStep, networkStep] },
  { name: "configure", parallel: [pinHostKeyStep, egressStep] },
  { name: "start", parallel: [launchStep, natStep] },
  portsStep,
  identityStep,
  waitSshStep,
  publishDnsStep,
];
